"""The one place that reads the environment: every setting of the layer, with its bounds and its variable.

`Settings()` reads the process environment (pydantic-settings); `get_settings()` builds it once per
container. A bad value fails at start-up with the variable's name and the rule it broke, e.g.
`HOURLY_GENERATION_LIMIT: Input should be greater than or equal to 0`. Empty variables count as unset.
Services never read settings: handlers pass them the values they need.

The database's part is its own model (`DatabaseSettings`, the `database` field) because the database
module takes it alone and tests build it directly: `DatabaseSettings(url=...)`.
"""

from __future__ import annotations

from datetime import timedelta
from functools import cache
from pathlib import Path
from typing import Annotated, Any, Literal, Self

from pydantic import AliasChoices, Field, PositiveInt, ValidationError, field_validator, model_validator
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict

AuthMode = Literal["url", "iam", "secret", "password"]

# RDS Proxy closes client connections idle for IdleClientTimeout (template: 1800 s). Recycling pooled
# connections before that means the proxy never kills one we still think is alive.
DEFAULT_MAX_LIFETIME_SECONDS = 1500.0

_CONFIG = SettingsConfigDict(frozen=True, extra="ignore", env_ignore_empty=True, populate_by_name=True,
                             case_sensitive=True)


def _env(*names: str) -> Any:
    """The field's own name (for keyword construction) and the variable(s) it is read from, first found wins."""
    return AliasChoices(*names) if len(names) > 1 else names[0]


class SettingsError(ValueError):
    """A setting of the environment is missing or out of bounds; the message names the variable."""


class _FromEnvironment(BaseSettings):
    @classmethod
    def from_environment(cls) -> Self:
        """Read the environment; a bad value raises SettingsError naming the variable and its rule."""
        try:
            return cls()
        except ValidationError as exc:
            lines = []
            for error in exc.errors(include_url=False):
                field = cls.model_fields.get(str(error["loc"][0])) if error["loc"] else None
                alias = field.validation_alias if field is not None else None
                choices = [c for c in alias.choices if isinstance(c, str)] if isinstance(alias, AliasChoices) else []
                variables = [c for c in choices if c.isupper()] or [".".join(str(p) for p in error["loc"])]
                lines.append(f"{' or '.join(variables)}: {error['msg']} (got {error.get('input')!r})")
            raise SettingsError("bad settings in the environment:\n  " + "\n  ".join(lines)) from None


class DatabaseSettings(_FromEnvironment):
    """How to reach PostgreSQL and size the pool.

    Locally `DATABASE_URL` is all there is. In AWS the functions reach PostgreSQL through RDS Proxy at
    `DB_HOST`/`DB_PORT`/`DB_NAME` as `DB_USER`, authenticating with an IAM auth token (`DB_AUTH=iam`, a
    fresh token for every new connection: tokens live 15 minutes, connections longer) or a Secrets Manager
    secret (`DB_AUTH=secret`, `DB_SECRET_ID`). Both use TLS.
    """

    model_config = _CONFIG

    url: str | None = Field(default=None, validation_alias=_env("url", "DATABASE_URL"), repr=False)
    host: str | None = Field(default=None, validation_alias=_env("host", "DB_HOST"))
    port: int = Field(default=5432, ge=1, le=65535, validation_alias=_env("port", "DB_PORT"))
    dbname: str = Field(default="genjobs", min_length=1, validation_alias=_env("dbname", "DB_NAME"))
    user: str | None = Field(default=None, validation_alias=_env("user", "DB_USER"))
    # None: derived (iam when DB_HOST is set without DATABASE_URL, else url)
    auth: AuthMode | None = Field(default=None, validation_alias=_env("auth", "DB_AUTH"))
    password: str | None = Field(default=None, repr=False, validation_alias=_env("password", "DB_PASSWORD"))
    secret_id: str | None = Field(default=None, validation_alias=_env("secret_id", "DB_SECRET_ID", "DB_SECRET_ARN"))
    region: str | None = Field(default=None, validation_alias=_env("region", "AWS_REGION", "AWS_DEFAULT_REGION"))
    # None: verify-full when a CA bundle is given (DB_SSLROOTCERT), else require (TLS without verification,
    # e.g. DB_AUTH=password against a local server without a CA)
    sslmode: Literal["disable", "allow", "prefer", "require", "verify-ca", "verify-full"] | None = Field(
        default=None, validation_alias=_env("sslmode", "DB_SSLMODE"))
    sslrootcert: str | None = Field(default=None, validation_alias=_env("sslrootcert", "DB_SSLROOTCERT"))
    application_name: str = Field(default="genjobs", validation_alias=_env(
        "application_name", "DB_APPLICATION_NAME", "AWS_LAMBDA_FUNCTION_NAME"))
    connect_timeout_seconds: float = Field(default=3.0, gt=0, le=60, validation_alias=_env(
        "connect_timeout_seconds", "DB_CONNECT_TIMEOUT"))
    pool_min_size: int = Field(default=1, ge=0, validation_alias=_env("pool_min_size", "DB_POOL_MIN_SIZE"))
    pool_max_size: int = Field(default=1, ge=1, validation_alias=_env("pool_max_size", "DB_POOL_MAX_SIZE"))
    max_lifetime_seconds: float = Field(default=DEFAULT_MAX_LIFETIME_SECONDS, gt=0, validation_alias=_env(
        "max_lifetime_seconds", "DB_MAX_LIFETIME"))
    idle_check_seconds: float = Field(default=60.0, ge=0, validation_alias=_env(
        "idle_check_seconds", "DB_IDLE_CHECK_SECONDS"))
    slow_query_ms: float = Field(default=250.0, ge=0, validation_alias=_env("slow_query_ms", "DB_SLOW_QUERY_MS"))

    @model_validator(mode="after")
    def _derive_auth(self) -> DatabaseSettings:
        if self.auth is None or (self.url and self.auth != "url" and not self.host):
            object.__setattr__(self, "auth", "iam" if self.host and not self.url else "url")
        if self.sslmode is None:
            object.__setattr__(self, "sslmode", "verify-full" if self.sslrootcert else "require")
        if self.pool_min_size > self.pool_max_size:
            raise ValueError("DB_POOL_MIN_SIZE must not exceed DB_POOL_MAX_SIZE")
        return self

    def check(self) -> None:
        """Raise ValueError when the settings cannot open a connection (the database calls this when it is
        built, so a function that never touches the database does not need them)."""
        auth = self.auth
        if auth == "url" and not self.url:
            raise ValueError("DATABASE_URL is not set (or set DB_AUTH=iam|secret with DB_HOST)")
        if auth in ("iam", "password") and not (self.host and self.user):
            raise ValueError(f"DB_AUTH={auth} needs DB_HOST and DB_USER")
        if auth == "iam" and not self.region:
            raise ValueError("DB_AUTH=iam needs AWS_REGION to sign the auth token")
        if auth == "secret" and not self.secret_id:
            raise ValueError("DB_AUTH=secret needs DB_SECRET_ID")
        if auth != "url" and self.sslmode in ("verify-full", "verify-ca") and not (
                self.sslrootcert and Path(self.sslrootcert).is_file()):
            # caught here, at start-up, rather than as a libpq error on the first connection
            raise ValueError(f"DB_SSLMODE={self.sslmode} needs DB_SSLROOTCERT pointing at a CA bundle file "
                             f"(got {self.sslrootcert!r})")

    @property
    def conninfo(self) -> str:
        """The static part of the connection string (no secrets for iam/secret modes)."""
        return self.url or "" if self.auth == "url" else ""


class Settings(_FromEnvironment):
    """Everything a function of the stack is configured with (template.yaml, Globals and per function)."""

    model_config = _CONFIG

    merchant_claim: str = Field(default="merchant_id", min_length=1, validation_alias=_env(
        "merchant_claim", "JWT_MERCHANT_CLAIM"))
    # the OAuth scope of the operator routes (/admin/...): API Gateway checks it (template.yaml), the admin
    # function checks it again
    admin_scope: str = Field(default="genjobs/admin", min_length=1, validation_alias=_env("admin_scope", "ADMIN_SCOPE"))
    hourly_generation_limit: int = Field(default=10, ge=0, validation_alias=_env(
        "hourly_generation_limit", "HOURLY_GENERATION_LIMIT"))
    regeneration_cooldown_hours: float = Field(default=24.0, ge=0, validation_alias=_env(
        "regeneration_cooldown_hours", "REGENERATION_COOLDOWN_HOURS"))
    default_video_states: Annotated[tuple[str, ...], NoDecode] = Field(
        default=("idle", "talking", "thinking"), min_length=1, validation_alias=_env(
            "default_video_states", "DEFAULT_VIDEO_STATES"))
    media_bucket: str = Field(default="genjobs-media-local", min_length=3, validation_alias=_env(
        "media_bucket", "MEDIA_BUCKET"))
    media_base_url: str | None = Field(default=None, validation_alias=_env("media_base_url", "MEDIA_BASE_URL"))
    worker_function_name: str = Field(default="genjobs-worker", min_length=1, validation_alias=_env(
        "worker_function_name", "WORKER_FUNCTION_NAME"))
    job_lease_seconds: int = Field(default=300, ge=10, le=3600, validation_alias=_env(
        "job_lease_seconds", "JOB_LEASE_SECONDS"))
    # a state-videos job's lease once an invocation runs (Bedrock takes ~90 s per 6 s clip and queues beyond its
    # quota); renewed by each started invocation and each recorded state. Until its first invocation is
    # recorded the job holds the short JOB_LEASE_SECONDS lease, so a worker lost before that is rescued soon.
    job_video_lease_seconds: int = Field(default=1800, ge=60, le=86_400, validation_alias=_env(
        "job_video_lease_seconds", "JOB_VIDEO_LEASE_SECONDS"))
    max_retries: int = Field(default=3, ge=0, le=100, validation_alias=_env("max_retries", "JOB_MAX_RETRIES"))
    long_poll_tick_ms: int = Field(default=100, ge=10, le=10_000, validation_alias=_env(
        "long_poll_tick_ms", "LONG_POLL_TICK_MS"))
    retention_failed_days: PositiveInt = Field(default=30, validation_alias=_env(
        "retention_failed_days", "RETENTION_FAILED_DAYS"))
    retention_archive_days: PositiveInt = Field(default=90, validation_alias=_env(
        "retention_archive_days", "RETENTION_ARCHIVE_DAYS"))
    # a deleted persona's media and rows are purged this long after the delete (an undo window for support)
    persona_purge_after_days: int = Field(default=30, ge=1, le=3650, validation_alias=_env(
        "persona_purge_after_days", "PERSONA_PURGE_AFTER_DAYS"))
    redispatch_after_seconds: PositiveInt = Field(default=120, validation_alias=_env(
        "redispatch_after_seconds", "REDISPATCH_AFTER_SECONDS"))
    maintenance_batch_size: PositiveInt = Field(default=100, le=10_000, validation_alias=_env(
        "maintenance_batch_size", "MAINTENANCE_BATCH_SIZE"))
    video_poll_after_seconds: PositiveInt = Field(default=600, validation_alias=_env(
        "video_poll_after_seconds", "VIDEO_POLL_AFTER_SECONDS"))
    # The keys of the list cursors (GET /jobs): in AWS a Secrets Manager secret (its id or ARN; AWSCURRENT
    # signs, AWSPREVIOUS still verifies after a rotation); locally the keys themselves, comma-separated, the
    # signing key first (the local runner generates one under .local/ and sets it). CURSOR_KEYS wins.
    cursor_secret_id: str | None = Field(default=None, validation_alias=_env("cursor_secret_id", "CURSOR_SECRET_ID"))
    cursor_keys: str | None = Field(default=None, repr=False, validation_alias=_env("cursor_keys", "CURSOR_KEYS"))
    metrics_namespace: str = Field(default="genjobs", min_length=1, validation_alias=_env(
        "metrics_namespace", "POWERTOOLS_METRICS_NAMESPACE"))
    # the function's region (Lambda sets AWS_REGION): the media bucket's, since the stack creates it there
    aws_region: str | None = Field(default=None, validation_alias=_env("aws_region", "AWS_REGION",
                                                                       "AWS_DEFAULT_REGION"))
    migrate_connect_retry_seconds: int = Field(default=240, ge=0, validation_alias=_env(
        "migrate_connect_retry_seconds", "MIGRATE_CONNECT_RETRY_SECONDS"))
    # -- webhooks (docs/webhooks.md) --
    webhooks_function_name: str = Field(default="genjobs-webhooks", min_length=1, validation_alias=_env(
        "webhooks_function_name", "WEBHOOKS_FUNCTION_NAME"))
    # Only the local runner sets it: http URLs and private, loopback and link-local addresses are refused
    # everywhere else (SSRF).
    webhook_allow_private_urls: bool = Field(default=False, validation_alias=_env(
        "webhook_allow_private_urls", "WEBHOOK_ALLOW_PRIVATE_URLS"))
    # The key that encrypts endpoint secrets at rest: given directly (local runner, tests) or read from a
    # Secrets Manager secret (AWS: the template generates one).
    webhook_secret_key: str | None = Field(default=None, min_length=32, repr=False, validation_alias=_env(
        "webhook_secret_key", "WEBHOOK_SECRET_KEY"))
    webhook_secret_key_arn: str | None = Field(default=None, validation_alias=_env(
        "webhook_secret_key_arn", "WEBHOOK_SECRET_KEY_ARN"))
    # Set in AWS: the signed requests go to this queue and the sender outside the VPC posts them.
    # Unset: the delivery function posts them itself (the local runner).
    webhook_queue_url: str | None = Field(default=None, validation_alias=_env(
        "webhook_queue_url", "WEBHOOK_QUEUE_URL"))
    webhook_timeout_seconds: float = Field(default=10.0, gt=0, le=30, validation_alias=_env(
        "webhook_timeout_seconds", "WEBHOOK_TIMEOUT_SECONDS"))
    webhook_batch_size: int = Field(default=50, ge=1, le=500, validation_alias=_env(
        "webhook_batch_size", "WEBHOOK_BATCH_SIZE"))
    # How long a claimed message is left alone before another worker may try it (a worker that died).
    webhook_lease_seconds: int = Field(default=120, ge=1, le=3600, validation_alias=_env(
        "webhook_lease_seconds", "WEBHOOK_LEASE_SECONDS"))
    database: DatabaseSettings = Field(default_factory=DatabaseSettings.from_environment)

    @field_validator("cursor_keys")
    @classmethod
    def _cursor_keys_long_enough(cls, value: str | None) -> str | None:
        if value is not None:
            from genjobs.ports import CursorKeys

            CursorKeys.from_text(*value.split(","))  # raises when a key is shorter than 32 bytes
        return value

    @field_validator("default_video_states", mode="before")
    @classmethod
    def _comma_separated(cls, value: Any) -> Any:
        if isinstance(value, str):
            return tuple(s.strip() for s in value.split(",") if s.strip())
        return value

    # -- derived values: each computed here once, so no caller re-derives them -----------------------

    @property
    def regeneration_cooldown(self) -> timedelta:
        return timedelta(hours=self.regeneration_cooldown_hours)

    @property
    def job_lease(self) -> timedelta:
        return timedelta(seconds=self.job_lease_seconds)

    @property
    def job_video_lease(self) -> timedelta:
        return timedelta(seconds=self.job_video_lease_seconds)

    @property
    def webhook_lease(self) -> timedelta:
        return timedelta(seconds=self.webhook_lease_seconds)


@cache
def get_settings() -> Settings:
    """The settings of this process, read from the environment on first use."""
    return Settings.from_environment()


def reload_settings() -> Settings:
    """Read the environment again (the local runner sets it before its functions start)."""
    get_settings.cache_clear()
    return get_settings()
