"""The local runner's settings: the one place in local_runner/ that reads the environment.

Like the layer's settings (genjobs.settings), a bad value stops the runner at start with the variable's
name and its rule. The functions themselves read their own settings the way they do in Lambda; the runner
sets the environment they see (`Runner._configure_environment`).
"""

from __future__ import annotations

from functools import cache
from pathlib import Path

from pydantic import AliasChoices, Field, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

DEFAULT_DATA_DIR = Path(__file__).resolve().parent.parent / ".local"
DEFAULT_SECRET = "genjobs-local-development-only-secret"  # noqa: S105 - local development only, documented
MIN_SECRET_BYTES = 32  # RFC 7518 §3.2: an HS256 key must be at least as long as the hash output


def _env(*names: str) -> AliasChoices:
    return AliasChoices(*names)


class LocalSettings(BaseSettings):
    model_config = SettingsConfigDict(frozen=True, extra="ignore", env_ignore_empty=True, populate_by_name=True,
                                      case_sensitive=True)

    port: int = Field(default=3000, ge=0, le=65535, validation_alias=_env("port", "PORT"))
    host: str = "127.0.0.1"
    local_dir: Path = Field(default=DEFAULT_DATA_DIR, validation_alias=_env("local_dir", "GENJOBS_LOCAL_DIR"))
    database_url: str | None = Field(default=None, validation_alias=_env("database_url", "DATABASE_URL"))
    media_delay_ms: int = Field(default=500, ge=0, validation_alias=_env("media_delay_ms", "LOCAL_MEDIA_DELAY_MS"))
    # None: the template's schedule
    maintenance_interval_seconds: float | None = Field(default=None, ge=0.1, validation_alias=_env(
        "maintenance_interval_seconds", "MAINTENANCE_INTERVAL_SECONDS"))
    async_workers: int = Field(default=4, ge=1, validation_alias=_env("async_workers", "LOCAL_ASYNC_WORKERS"))
    max_containers: int = Field(default=10, ge=1, validation_alias=_env("max_containers", "LOCAL_MAX_CONTAINERS"))
    token_merchant: str = Field(default="acme", min_length=1, max_length=200, validation_alias=_env(
        "token_merchant", "LOCAL_TOKEN_MERCHANT"))
    token_hours: float = Field(default=12.0, ge=0.01, validation_alias=_env("token_hours", "LOCAL_TOKEN_HOURS"))
    statement_log: Path | None = Field(default=None, validation_alias=_env("statement_log", "LOCAL_STATEMENT_LOG"))
    jwt_secret: str = Field(default=DEFAULT_SECRET, repr=False, validation_alias=_env("jwt_secret", "LOCAL_JWT_SECRET"))
    merchant_claim: str = Field(default="merchant_id", min_length=1, validation_alias=_env(
        "merchant_claim", "JWT_MERCHANT_CLAIM"))
    log_level: str = Field(default="INFO", validation_alias=_env("log_level", "LOCAL_RUNNER_LOG_LEVEL"))

    @field_validator("local_dir")
    @classmethod
    def _absolute(cls, value: Path) -> Path:
        return value.expanduser().resolve()

    @field_validator("jwt_secret")
    @classmethod
    def _long_enough(cls, value: str) -> str:
        if len(value.encode()) < MIN_SECRET_BYTES:
            raise ValueError(f"must be at least {MIN_SECRET_BYTES} bytes (RFC 7518 for HS256); "
                             f"it has {len(value.encode())}")
        return value


@cache
def local_settings() -> LocalSettings:
    return LocalSettings()
