"""Time as a dependency: services take a `Clock` so tests can move time (cooldowns, windows, backoff)."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime

Clock = Callable[[], datetime]


def utc_now() -> datetime:
    return datetime.now(UTC)
