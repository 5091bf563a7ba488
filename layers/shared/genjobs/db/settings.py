"""Connection settings for the database, read from the environment.

Locally `DATABASE_URL` is all there is. In AWS the functions reach PostgreSQL through RDS Proxy at
`DB_HOST`/`DB_PORT`/`DB_NAME` as `DB_USER`, authenticating either with an IAM auth token
(`DB_AUTH=iam`, a fresh token for every new connection: tokens live 15 minutes, connections longer) or
with a Secrets Manager secret (`DB_AUTH=secret`, `DB_SECRET_ID`). Both require TLS.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from functools import cached_property
from typing import Any, Literal

AuthMode = Literal["url", "iam", "secret", "password"]

# RDS Proxy closes client connections idle for IdleClientTimeout (template: 1800 s). Recycling pooled
# connections before that means the proxy never kills one we still think is alive.
DEFAULT_MAX_LIFETIME_SECONDS = 1500.0


def _float(env: Mapping[str, str], name: str, default: float) -> float:
    raw = env.get(name, "").strip()
    if not raw:
        return default
    try:
        return float(raw)
    except ValueError as exc:
        raise ValueError(f"{name} must be a number, got {raw!r}") from exc


def _int(env: Mapping[str, str], name: str, default: int) -> int:
    return int(_float(env, name, default))


@dataclass(frozen=True)
class DatabaseSettings:
    """Everything needed to open connections and size the pool."""

    url: str | None = None
    host: str | None = None
    port: int = 5432
    dbname: str = "genjobs"
    user: str | None = None
    auth: AuthMode = "url"
    password: str | None = field(default=None, repr=False)
    secret_id: str | None = None
    region: str | None = None
    sslmode: str = "require"
    sslrootcert: str | None = None
    application_name: str = "genjobs"
    connect_timeout_seconds: float = 3.0
    pool_min_size: int = 1
    pool_max_size: int = 1
    max_lifetime_seconds: float = DEFAULT_MAX_LIFETIME_SECONDS
    idle_check_seconds: float = 60.0
    slow_query_ms: float = 250.0

    @classmethod
    def from_env(cls, env: Mapping[str, str]) -> DatabaseSettings:
        url = env.get("DATABASE_URL") or None
        auth_raw = (env.get("DB_AUTH") or ("iam" if env.get("DB_HOST") and not url else "url")).strip().lower()
        if auth_raw not in ("url", "iam", "secret", "password"):
            raise ValueError(f"DB_AUTH must be one of url, iam, secret, password; got {auth_raw!r}")
        auth: AuthMode = auth_raw  # type: ignore[assignment]
        if url and auth_raw != "url" and not env.get("DB_HOST"):
            auth = "url"
        settings = cls(
            url=url if auth == "url" else None,
            host=env.get("DB_HOST") or None,
            port=_int(env, "DB_PORT", 5432),
            dbname=env.get("DB_NAME") or "genjobs",
            user=env.get("DB_USER") or None,
            auth=auth,
            password=env.get("DB_PASSWORD") or None,
            secret_id=env.get("DB_SECRET_ID") or env.get("DB_SECRET_ARN") or None,
            region=env.get("AWS_REGION") or env.get("AWS_DEFAULT_REGION") or None,
            sslmode=env.get("DB_SSLMODE") or "require",
            sslrootcert=env.get("DB_SSLROOTCERT") or None,
            application_name=env.get("DB_APPLICATION_NAME")
            or env.get("AWS_LAMBDA_FUNCTION_NAME")
            or "genjobs",
            connect_timeout_seconds=_float(env, "DB_CONNECT_TIMEOUT", 3.0),
            pool_min_size=_int(env, "DB_POOL_MIN_SIZE", 1),
            pool_max_size=_int(env, "DB_POOL_MAX_SIZE", 1),
            max_lifetime_seconds=_float(env, "DB_MAX_LIFETIME", DEFAULT_MAX_LIFETIME_SECONDS),
            idle_check_seconds=_float(env, "DB_IDLE_CHECK_SECONDS", 60.0),
            slow_query_ms=_float(env, "DB_SLOW_QUERY_MS", 250.0),
        )
        settings.validate()
        return settings

    def validate(self) -> None:
        if self.auth == "url" and not self.url:
            raise ValueError("DATABASE_URL is not set (or set DB_AUTH=iam|secret with DB_HOST)")
        if self.auth in ("iam", "password") and not (self.host and self.user):
            raise ValueError(f"DB_AUTH={self.auth} needs DB_HOST and DB_USER")
        if self.auth == "iam" and not self.region:
            raise ValueError("DB_AUTH=iam needs AWS_REGION to sign the auth token")
        if self.auth == "secret" and not self.secret_id:
            raise ValueError("DB_AUTH=secret needs DB_SECRET_ID")
        if self.pool_max_size < 1 or self.pool_min_size < 0 or self.pool_min_size > self.pool_max_size:
            raise ValueError("pool sizes must satisfy 0 <= DB_POOL_MIN_SIZE <= DB_POOL_MAX_SIZE >= 1")
        if self.connect_timeout_seconds <= 0:
            raise ValueError("DB_CONNECT_TIMEOUT must be positive")

    @cached_property
    def conninfo(self) -> str:
        """The static part of the connection string (no secrets for iam/secret modes)."""
        if self.auth == "url":
            assert self.url is not None
            return self.url
        return ""


# Credential providers return the per-connection keyword arguments that change over time.
CredentialProvider = Callable[[], dict[str, Any]]


def iam_credentials(settings: DatabaseSettings, rds_client_factory: Callable[[], Any]) -> CredentialProvider:
    """Connection kwargs with a freshly signed RDS IAM auth token (signed locally: no network call)."""
    client_holder: list[Any] = []

    def provide() -> dict[str, Any]:
        if not client_holder:
            client_holder.append(rds_client_factory())
        token = client_holder[0].generate_db_auth_token(
            DBHostname=settings.host, Port=settings.port, DBUsername=settings.user, Region=settings.region
        )
        return {
            "host": settings.host,
            "port": settings.port,
            "dbname": settings.dbname,
            "user": settings.user,
            "password": token,
            **_tls_kwargs(settings),
        }

    return provide


def secret_credentials(
    settings: DatabaseSettings, fetch_secret: Callable[[str], Mapping[str, Any]]
) -> CredentialProvider:
    """Connection kwargs from a Secrets Manager secret in the RDS secret JSON shape.

    `fetch_secret` caches (powertools parameters, max_age) so a rotation is picked up within minutes
    without a call per connection.
    """

    def provide() -> dict[str, Any]:
        assert settings.secret_id is not None
        secret = fetch_secret(settings.secret_id)
        return {
            "host": settings.host or secret.get("host"),
            "port": int(secret.get("port") or settings.port),
            "dbname": settings.dbname if settings.dbname else secret.get("dbname"),
            "user": settings.user or secret.get("username"),
            "password": secret.get("password"),
            **_tls_kwargs(settings),
        }

    return provide


def password_credentials(settings: DatabaseSettings) -> CredentialProvider:
    def provide() -> dict[str, Any]:
        return {
            "host": settings.host,
            "port": settings.port,
            "dbname": settings.dbname,
            "user": settings.user,
            "password": settings.password,
            **_tls_kwargs(settings),
        }

    return provide


def _tls_kwargs(settings: DatabaseSettings) -> dict[str, Any]:
    kwargs: dict[str, Any] = {"sslmode": settings.sslmode}
    if settings.sslrootcert:
        kwargs["sslrootcert"] = settings.sslrootcert
    return kwargs
