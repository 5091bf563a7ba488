"""The one place that builds the shared objects of a container: settings, database, invoker, media
provider and store, clock, the cursor keys, and for webhooks the secret box and the HTTP sender.

In AWS they are built on first use from the settings (RDS Proxy pool, Lambda, Bedrock, S3) and live as
long as the container. The tests and the local runner replace any of them with `override(...)` (a frozen
clock, an in-process invoker, local media, a test database) and put the defaults back with `reset()`.
Handlers ask `get()`; services receive the objects as arguments and never come here.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, replace
from typing import Any

from genjobs.db import Database
from genjobs.ports import (
    Clock,
    CursorKeys,
    CursorKeySource,
    FunctionInvoker,
    MediaProvider,
    MediaStore,
    ModelCatalog,
    SecretBox,
    WebhookSender,
    utc_now,
)
from genjobs.settings import Settings, SettingsError, get_settings


@dataclass(frozen=True)
class Dependencies:
    settings: Settings
    db: Database
    invoker: FunctionInvoker
    provider: MediaProvider
    store: MediaStore
    clock: Clock
    cursor_keys: CursorKeySource
    catalog: ModelCatalog
    secret_box: SecretBox
    webhook_sender: WebhookSender


_overrides: dict[str, Any] = {}
_built: Dependencies | None = None
_lock = threading.RLock()


def _build() -> Dependencies:
    from genjobs.adapters.bedrock import BedrockMediaProvider
    from genjobs.adapters.bedrock_catalog import BedrockModelCatalog
    from genjobs.adapters.lambda_invoker import LambdaInvoker
    from genjobs.adapters.s3 import S3MediaStore
    from genjobs.adapters.webhooks import HttpSender

    settings = _overrides.get("settings") or get_settings()

    def cursor_keys() -> CursorKeySource:
        if settings.cursor_keys:
            keys = CursorKeys.from_text(*settings.cursor_keys.split(","))
            return lambda: keys
        if settings.cursor_secret_id:
            from genjobs.adapters.secrets import SecretsManagerCursorKeys

            return SecretsManagerCursorKeys(settings.cursor_secret_id)

        def unconfigured() -> CursorKeys:
            raise SettingsError("CURSOR_SECRET_ID (or CURSOR_KEYS) must be set to page lists")
        return unconfigured

    def part(name: str, make: Any) -> Any:
        return _overrides[name] if name in _overrides else make()

    # Every constructor here is cheap and lazy (the pool connects and boto3 clients are made on first use),
    # so building all of them costs a container nothing it does not use.
    return Dependencies(
        settings=settings,
        db=part("db", lambda: Database(settings.database)),
        invoker=part("invoker", LambdaInvoker),
        provider=part("provider", lambda: BedrockMediaProvider(region=settings.aws_region)),
        store=part("store", lambda: S3MediaStore(settings.media_bucket, base_url=settings.media_base_url,
                                                 region=settings.aws_region)),
        clock=part("clock", lambda: utc_now),
        cursor_keys=part("cursor_keys", cursor_keys),
        catalog=part("catalog", BedrockModelCatalog),
        secret_box=part("secret_box", lambda: _secret_box(settings)),
        webhook_sender=part("webhook_sender", lambda: HttpSender(
            allow_private=settings.webhook_allow_private_urls, timeout_seconds=settings.webhook_timeout_seconds)),
    )


def _secret_box(settings: Settings) -> SecretBox:
    from genjobs.adapters.webhooks import FernetSecretBox, LazySecretBox, MissingSecretBox, SecretsManagerKey

    if settings.webhook_secret_key:
        return FernetSecretBox(settings.webhook_secret_key)
    if settings.webhook_secret_key_arn:
        return LazySecretBox(SecretsManagerKey(settings.webhook_secret_key_arn))
    return MissingSecretBox()


def get() -> Dependencies:
    """The container's shared objects (built once)."""
    global _built  # noqa: PLW0603 - one set per container is the point
    built = _built
    if built is None:
        with _lock:
            if _built is None:
                _built = _build()
            built = _built
    return built


def override(**parts: Any) -> None:
    """Replace parts (`settings`, `db`, `invoker`, `provider`, `store`, `clock`, `catalog`, `cursor_keys`,
    `secret_box`, `webhook_sender`) from now on; a part given as None goes back to its default. Parts not named
    keep their override or default; nothing is built until the next `get()`. Objects handed out before stay
    with their callers."""
    global _built  # noqa: PLW0603
    unknown = set(parts) - set(Dependencies.__dataclass_fields__)
    if unknown:
        raise TypeError(f"no such dependencies: {sorted(unknown)}")
    with _lock:
        for name, value in parts.items():
            if value is None:
                _overrides.pop(name, None)
            else:
                _overrides[name] = value
        replaced = {k: v for k, v in parts.items() if v is not None}
        keep = _built is not None and "settings" not in parts and len(replaced) == len(parts)
        _built = replace(_built, **replaced) if keep and _built is not None else None


def overrides() -> dict[str, Any]:
    """The parts overridden now (a copy)."""
    with _lock:
        return dict(_overrides)


def reset() -> Dependencies | None:
    """Drop every override and the built objects (the next `get()` builds the defaults); returns what was
    built, so its owner can close the database."""
    global _built
    with _lock:
        previous, _built = _built, None
        _overrides.clear()
        return previous


@contextmanager
def overridden(**parts: Any) -> Iterator[None]:
    """`override(**parts)` for the duration of the block; the overrides before it come back after it."""
    global _built  # noqa: PLW0603
    with _lock:
        saved_overrides, saved_built = dict(_overrides), _built
    try:
        override(**parts)
        yield
    finally:
        with _lock:
            _overrides.clear()
            _overrides.update(saved_overrides)
            _built = saved_built
