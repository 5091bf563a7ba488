"""Per-connection credentials for the pool: an IAM auth token, a Secrets Manager secret, or a password.

Each provider returns the keyword arguments of one new connection; the pool calls it for every connection
it opens, so a rotated secret or a fresh 15-minute IAM token is picked up without restarting.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

from genjobs.settings import DatabaseSettings

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


def _rds_client(region: str | None) -> Any:
    from genjobs.adapters import aws_client  # lazily: only IAM-authenticated containers pay for boto3

    return aws_client("rds", region_name=region)


def _fetch_secret(secret_id: str) -> Mapping[str, Any]:
    from aws_lambda_powertools.utilities import parameters

    value = parameters.get_secret(secret_id, transform="json", max_age=300)
    if not isinstance(value, Mapping):
        raise ValueError(f"secret {secret_id} is not a JSON object")
    return value


def credentials_for(settings: DatabaseSettings) -> CredentialProvider | None:
    """The provider for the settings' auth mode (None for a plain DATABASE_URL)."""
    if settings.auth == "iam":
        return iam_credentials(settings, lambda: _rds_client(settings.region))
    if settings.auth == "secret":
        return secret_credentials(settings, _fetch_secret)
    if settings.auth == "password":
        return password_credentials(settings)
    return None
