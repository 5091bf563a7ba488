"""Process-wide collaborators of the handlers: the function invoker, the media provider and media store.

In AWS they are built lazily from the configuration (Lambda, Bedrock, S3). The local runner and the tests
install other implementations with `configure()` (in-process invokes, local media). Handlers ask this
module; services receive the objects as arguments.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass

from genjobs.config import AppConfig, get_config
from genjobs.invoke import FunctionInvoker, LambdaInvoker
from genjobs.media.provider import MediaProvider, MediaStore


@dataclass
class _Runtime:
    invoker: FunctionInvoker | None = None
    provider: MediaProvider | None = None
    store: MediaStore | None = None


_runtime = _Runtime()
_lock = threading.Lock()


def configure(
    *,
    invoker: FunctionInvoker | None = None,
    provider: MediaProvider | None = None,
    store: MediaStore | None = None,
) -> None:
    """Install implementations (None leaves the current one)."""
    with _lock:
        if invoker is not None:
            _runtime.invoker = invoker
        if provider is not None:
            _runtime.provider = provider
        if store is not None:
            _runtime.store = store


def reset() -> None:
    with _lock:
        _runtime.invoker = _runtime.provider = _runtime.store = None


def invoker() -> FunctionInvoker:
    with _lock:
        if _runtime.invoker is None:
            _runtime.invoker = LambdaInvoker()
        return _runtime.invoker


def media_provider(config: AppConfig | None = None) -> MediaProvider:
    with _lock:
        if _runtime.provider is None:
            from genjobs.media.bedrock import BedrockMediaProvider

            _runtime.provider = BedrockMediaProvider()
        return _runtime.provider


def media_store(config: AppConfig | None = None) -> MediaStore:
    config = config or get_config()
    with _lock:
        if _runtime.store is None:
            from genjobs.media.s3_store import S3MediaStore

            _runtime.store = S3MediaStore(config.media_bucket, base_url=config.media_base_url)
        return _runtime.store
