"""The functions, run in-process the way Lambda runs them.

* Each function has a pool of *containers*: a container is its own copy of the handler module (loaded from
  `functions/<name>/app.py` under a private module name), so module-level state (the resolver, caches) is
  per container, and a container serves one invocation at a time, as in Lambda. A new container is made
  (a cold start: the module is imported again) when every existing one is busy, up to `max_containers`.
* Payloads and results go through JSON, as they do between Lambda and its callers, so a handler that
  returns something JSON cannot carry fails here as it would in AWS.
* `InProcessInvoker` implements `genjobs.ports.FunctionInvoker`: `invoke_async` (InvocationType=Event)
  queues the invocation on a bounded thread pool and returns at once; a handler that raises is retried
  like Lambda retries asynchronous invocations (`MaximumRetryAttempts` from template.yaml, 2 by default),
  after short delays; `invoke_sync` (RequestResponse) runs inline and raises `InvokeFailed` when the handler
  raises (Lambda's FunctionError).
"""

from __future__ import annotations

import importlib.util
import itertools
import json
import logging
import threading
import time
from collections.abc import Callable, Mapping
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from types import ModuleType
from typing import Any

from genjobs.ports import InvokeFailed

from local_runner.context import LambdaContext
from local_runner.isolation import forget_request_state
from local_runner.template import FunctionSpec

logger = logging.getLogger("local_runner.lambdas")


@dataclass
class Container:
    number: int
    module: ModuleType
    handler: Callable[[Any, Any], Any]


class FunctionPool:
    """Containers of one function."""

    _module_ids = itertools.count(1)

    def __init__(self, spec: FunctionSpec, function_name: str, *, max_containers: int = 10) -> None:
        self.spec = spec
        self.function_name = function_name
        self.max_containers = max_containers
        self._idle: list[Container] = []
        self._count = 0
        self._cond = threading.Condition()

    def _load(self) -> Container:
        number = next(self._module_ids)
        module_name = f"_genjobs_local_functions.{self.spec.name}_{number}"
        spec = importlib.util.spec_from_file_location(module_name, self.spec.module_path)
        if spec is None or spec.loader is None:
            raise ImportError(f"cannot load {self.spec.module_path}")
        module = importlib.util.module_from_spec(spec)
        import sys

        sys.modules[module_name] = module  # pydantic and powertools resolve annotations through sys.modules
        try:
            spec.loader.exec_module(module)
        except BaseException:
            sys.modules.pop(module_name, None)
            raise
        handler = getattr(module, self.spec.handler_function)
        return Container(number=number, module=module, handler=handler)

    def warm(self) -> Container:
        """Make one container now (import errors surface at startup, not on the first request)."""
        with self._cond:
            if self._idle:
                return self._idle[0]
            self._count += 1
        try:
            container = self._load()
        except BaseException:
            with self._cond:
                self._count -= 1
            raise
        with self._cond:
            self._idle.append(container)
            self._cond.notify()
        return container

    def _acquire(self) -> Container:
        with self._cond:
            while not self._idle and self._count >= self.max_containers:
                self._cond.wait()
            if self._idle:
                return self._idle.pop()
            self._count += 1
        try:
            return self._load()
        except BaseException:
            with self._cond:
                self._count -= 1
                self._cond.notify()
            raise

    def _release(self, container: Container) -> None:
        with self._cond:
            self._idle.append(container)
            self._cond.notify()

    def invoke(self, event: Any, *, timeout_seconds: float | None = None) -> Any:
        """Run the handler on a free container; JSON in, JSON out. Exceptions propagate."""
        payload = json.loads(json.dumps(event))
        container = self._acquire()
        try:
            context = LambdaContext(self.function_name, memory_mb=self.spec.memory_mb,
                                    timeout_seconds=timeout_seconds or self.spec.timeout_seconds)
            result = container.handler(payload, context)
        finally:
            forget_request_state()
            self._release(container)
        return json.loads(json.dumps(result))


class LocalLambdas:
    """Every function of the template, addressable by the names the code uses to invoke them."""

    def __init__(self, specs: list[FunctionSpec], names: Mapping[str, str], *, max_containers: int = 10) -> None:
        """`names`: function name (as invoked, e.g. genjobs-generation) → code directory name."""
        self.specs = {s.name: s for s in specs}
        self.pools: dict[str, FunctionPool] = {}
        for spec in specs:
            primary = next((n for n, d in names.items() if d == spec.name), f"genjobs-{spec.name}")
            self.pools[spec.name] = FunctionPool(spec, primary, max_containers=max_containers)
        self.names = dict(names)

    def pool_for(self, function_name: str) -> FunctionPool:
        name = function_name.rsplit(":function:", 1)[-1].split(":", 1)[0]  # an ARN, or name[:qualifier]
        directory = self.names.get(name)
        if directory is None or directory not in self.pools:
            raise InvokeFailed(f"Function not found: {function_name} (ResourceNotFoundException)")
        return self.pools[directory]

    def pool(self, directory: str) -> FunctionPool:
        return self.pools[directory]

    def warm(self, directories: list[str] | None = None) -> None:
        for name in directories or list(self.pools):
            self.pools[name].warm()


class InProcessInvoker:
    """`genjobs.ports.FunctionInvoker` for the runner."""

    def __init__(self, lambdas: LocalLambdas, *, workers: int = 4, retry_delays: tuple[float, ...] = (1.0, 2.0)
                 ) -> None:
        self.lambdas = lambdas
        self.retry_delays = retry_delays
        self._executor = ThreadPoolExecutor(max_workers=workers, thread_name_prefix="lambda-async")
        self._closed = threading.Event()
        self._inflight: set[Future[None]] = set()
        self._lock = threading.Lock()

    def invoke_async(self, function_name: str, payload: Mapping[str, Any]) -> None:
        pool = self.lambdas.pool_for(function_name)
        event = json.loads(json.dumps(payload))  # what boto3 would send; unserialisable payloads fail here
        if self._closed.is_set():
            raise InvokeFailed(f"async invoke of {function_name} refused: the runner is stopping")
        try:
            future = self._executor.submit(self._run_async, pool, event)
        except RuntimeError as exc:  # executor shut down
            raise InvokeFailed(f"async invoke of {function_name} refused: {exc}") from exc
        with self._lock:
            self._inflight.add(future)
        future.add_done_callback(self._done)

    def _done(self, future: Future[None]) -> None:
        with self._lock:
            self._inflight.discard(future)

    def _run_async(self, pool: FunctionPool, event: Any) -> None:
        attempts = 1 + max(0, pool.spec.max_async_retries)
        for attempt in range(1, attempts + 1):
            try:
                pool.invoke(event)
                return
            except Exception:
                logger.exception("%s: asynchronous invocation failed (attempt %d of %d)", pool.function_name,
                                 attempt, attempts)
            if attempt == attempts:
                break
            delay = self.retry_delays[min(attempt - 1, len(self.retry_delays) - 1)] if self.retry_delays else 0
            if self._closed.wait(delay):
                return
        logger.error("%s: asynchronous invocation dropped after %d attempts (in AWS: to the DLQ)",
                     pool.function_name, attempts)

    def invoke_sync(self, function_name: str, payload: Mapping[str, Any]) -> Any:
        pool = self.lambdas.pool_for(function_name)
        try:
            return pool.invoke(payload)
        except Exception as exc:
            raise InvokeFailed(f"{function_name} failed: {type(exc).__name__}: {exc}") from exc

    def pending(self) -> int:
        with self._lock:
            return len(self._inflight)

    def drain(self, timeout: float) -> bool:
        """Wait up to `timeout` for queued and running invocations (retries included); True when idle."""
        deadline = time.monotonic() + timeout
        while self.pending() and time.monotonic() < deadline:
            time.sleep(0.02)
        return self.pending() == 0

    def shutdown(self, timeout: float = 2.0) -> bool:
        """Refuse new invocations, cancel queued ones, wait up to `timeout` for running ones; True if idle."""
        self._closed.set()
        self._executor.shutdown(wait=False, cancel_futures=True)
        deadline = time.monotonic() + timeout
        while self.pending() and time.monotonic() < deadline:
            time.sleep(0.05)
        return self.pending() == 0
