"""Request state of the powertools resolvers, made per thread for the runner.

In Lambda a container serves one request at a time, so powertools keeps the current request on the
*class*: `BaseRouter.current_event = ...` and `BaseRouter.lambda_context = ...` in `resolve()`, shared by
every resolver in the process. The runner serves requests on many threads at once; without this, a request
could read another request's event mid-flight, including its JWT claims, i.e. another merchant's identity.

`make_router_state_thread_local()` gives those two attributes one value per thread: a data descriptor on
BaseRouter (for reads and writes through instances) and the same descriptor on a metaclass installed on
BaseRouter (for the class-level reads and writes powertools does). Each function container also gets its
own resolver instance (see lambdas.py), which keeps the per-instance `context` dict per request as well.
"""

from __future__ import annotations

import threading
from typing import Any

_state = threading.local()
_ATTRIBUTES = ("current_event", "lambda_context")
_installed = False
_lock = threading.Lock()


class _PerThread:
    def __init__(self, name: str) -> None:
        self.name = name

    def __get__(self, obj: object, owner: type | None = None) -> Any:
        try:
            return getattr(_state, self.name)
        except AttributeError:
            raise AttributeError(self.name) from None

    def __set__(self, obj: object, value: Any) -> None:
        setattr(_state, self.name, value)

    def __delete__(self, obj: object) -> None:
        if hasattr(_state, self.name):
            delattr(_state, self.name)


def make_router_state_thread_local() -> None:
    """Idempotent; call before any request is resolved."""
    global _installed  # noqa: PLW0603 - once per process
    from aws_lambda_powertools.event_handler.api_gateway import BaseRouter

    with _lock:
        if _installed:
            return
        for name in _ATTRIBUTES:
            setattr(BaseRouter, name, _PerThread(name))  # while the metaclass is still plain: lands in __dict__
        base_meta = type(BaseRouter)
        per_thread_meta = type(f"PerThread{base_meta.__name__}", (base_meta,),
                               {name: _PerThread(name) for name in _ATTRIBUTES})
        BaseRouter.__class__ = per_thread_meta  # type: ignore[method-assign]
        _installed = True


def forget_request_state() -> None:
    """Drop this thread's request state (after an invocation, so nothing lingers on a pooled thread)."""
    for name in _ATTRIBUTES:
        if hasattr(_state, name):
            delattr(_state, name)
