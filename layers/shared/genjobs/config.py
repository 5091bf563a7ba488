"""Deployment configuration read from the environment, once per container.

Only handlers (and the local runner) read this; services receive the values they need as arguments.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass
from functools import lru_cache


def _int(env: Mapping[str, str], name: str, default: int, *, minimum: int = 0) -> int:
    raw = env.get(name, "").strip()
    if not raw:
        return default
    try:
        value = int(raw)
    except ValueError as exc:
        raise ValueError(f"{name} must be an integer, got {raw!r}") from exc
    if value < minimum:
        raise ValueError(f"{name} must be >= {minimum}, got {value}")
    return value


def _float(env: Mapping[str, str], name: str, default: float) -> float:
    raw = env.get(name, "").strip()
    return float(raw) if raw else default


@dataclass(frozen=True)
class AppConfig:
    merchant_claim: str = "merchant_id"
    hourly_generation_limit: int = 10
    regeneration_cooldown_hours: float = 24.0
    default_video_states: tuple[str, ...] = ("idle", "talking", "thinking")
    media_bucket: str = "genjobs-media-local"
    media_base_url: str | None = None
    media_provider: str = "bedrock"
    generation_function_name: str = "genjobs-generation"
    progress_function_name: str = "genjobs-progress"
    job_lease_seconds: int = 300
    max_retries: int = 3
    long_poll_tick_ms: int = 500
    retention_failed_days: int = 30
    retention_archive_days: int = 90
    redispatch_after_seconds: int = 120
    maintenance_batch_size: int = 100
    video_poll_after_seconds: int = 600
    metrics_namespace: str = "genjobs"
    migrate_connect_retry_seconds: int = 240

    @classmethod
    def from_env(cls, env: Mapping[str, str]) -> AppConfig:
        states = tuple(s.strip() for s in env.get("DEFAULT_VIDEO_STATES", "idle,talking,thinking").split(",")
                       if s.strip())
        return cls(
            merchant_claim=env.get("JWT_MERCHANT_CLAIM") or "merchant_id",
            hourly_generation_limit=_int(env, "HOURLY_GENERATION_LIMIT", 10),
            regeneration_cooldown_hours=_float(env, "REGENERATION_COOLDOWN_HOURS", 24.0),
            default_video_states=states or ("idle", "talking", "thinking"),
            media_bucket=env.get("MEDIA_BUCKET") or "genjobs-media-local",
            media_base_url=env.get("MEDIA_BASE_URL") or None,
            media_provider=env.get("MEDIA_PROVIDER") or "bedrock",
            generation_function_name=env.get("GENERATION_FUNCTION_NAME") or "genjobs-generation",
            progress_function_name=env.get("PROGRESS_FUNCTION_NAME") or "genjobs-progress",
            job_lease_seconds=_int(env, "JOB_LEASE_SECONDS", 300, minimum=10),
            max_retries=_int(env, "JOB_MAX_RETRIES", 3),
            long_poll_tick_ms=_int(env, "LONG_POLL_TICK_MS", 500, minimum=10),
            retention_failed_days=_int(env, "RETENTION_FAILED_DAYS", 30, minimum=1),
            retention_archive_days=_int(env, "RETENTION_ARCHIVE_DAYS", 90, minimum=1),
            redispatch_after_seconds=_int(env, "REDISPATCH_AFTER_SECONDS", 120, minimum=1),
            maintenance_batch_size=_int(env, "MAINTENANCE_BATCH_SIZE", 100, minimum=1),
            video_poll_after_seconds=_int(env, "VIDEO_POLL_AFTER_SECONDS", 600, minimum=1),
            metrics_namespace=env.get("POWERTOOLS_METRICS_NAMESPACE") or "genjobs",
            migrate_connect_retry_seconds=_int(env, "MIGRATE_CONNECT_RETRY_SECONDS", 240),
        )


@lru_cache(maxsize=1)
def get_config() -> AppConfig:
    return AppConfig.from_env(os.environ)
