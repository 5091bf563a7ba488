"""Connection settings for AWS: IAM auth tokens and Secrets Manager secrets (moto at the AWS boundary)."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from urllib.parse import parse_qs, urlparse

import boto3
import psycopg
import pytest
from genjobs.db import Database, DatabaseSettings
from genjobs.db.credentials import credentials_for
from genjobs.errors import DatabaseTimeout
from genjobs.settings import SettingsError
from moto import mock_aws
from psycopg.conninfo import conninfo_to_dict

_DB_VARIABLES = ("DATABASE_URL", "DB_HOST", "DB_PORT", "DB_NAME", "DB_USER", "DB_AUTH", "DB_PASSWORD", "DB_SECRET_ID",
                 "DB_SECRET_ARN", "DB_SSLMODE", "DB_SSLROOTCERT", "DB_CONNECT_TIMEOUT", "DB_POOL_MIN_SIZE",
                 "DB_POOL_MAX_SIZE", "DB_MAX_LIFETIME", "AWS_REGION", "DB_SSLMODE")


@pytest.fixture
def environment(monkeypatch: pytest.MonkeyPatch) -> Callable[[dict[str, str]], DatabaseSettings]:
    """Settings read from exactly the given environment (the database's variables only)."""
    def read(env: dict[str, str]) -> DatabaseSettings:
        for name in _DB_VARIABLES:
            monkeypatch.delenv(name, raising=False)
        for name, value in env.items():
            monkeypatch.setenv(name, value)
        settings = DatabaseSettings.from_environment()
        settings.check()
        return settings
    return read


def test_url_settings_from_env(environment: Callable[[dict[str, str]], DatabaseSettings]) -> None:
    settings = environment({"DATABASE_URL": "postgresql://u@h/db", "DB_CONNECT_TIMEOUT": "2",
                                          "DB_POOL_MAX_SIZE": "3", "DB_MAX_LIFETIME": "900"})
    assert settings.auth == "url" and settings.conninfo == "postgresql://u@h/db"
    assert (settings.connect_timeout_seconds, settings.pool_max_size, settings.max_lifetime_seconds) == (2.0, 3, 900.0)
    assert credentials_for(settings) is None


@pytest.mark.parametrize(("env", "message"), [
    ({}, "DATABASE_URL"),
    ({"DB_AUTH": "iam", "DB_HOST": "proxy"}, "DB_USER"),
    ({"DB_AUTH": "iam", "DB_HOST": "proxy", "DB_USER": "app", "AWS_DEFAULT_REGION": ""}, "AWS_REGION"),
    ({"DB_AUTH": "secret"}, "DB_SECRET_ID"),
    ({"DB_AUTH": "kerberos"}, "DB_AUTH"),
    ({"DATABASE_URL": "x", "DB_POOL_MAX_SIZE": "0"}, "DB_POOL_MAX_SIZE: Input should be greater than or equal to 1"),
    ({"DATABASE_URL": "x", "DB_POOL_MIN_SIZE": "3"}, "DB_POOL_MIN_SIZE must not exceed DB_POOL_MAX_SIZE"),
    ({"DATABASE_URL": "x", "DB_CONNECT_TIMEOUT": "soon"}, "DB_CONNECT_TIMEOUT: Input should be a valid number"),
    ({"DATABASE_URL": "x", "DB_PORT": "3.7"}, "DB_PORT: Input should be a valid integer"),
])
def test_bad_settings_are_clear_errors(environment: Callable[[dict[str, str]], DatabaseSettings],
                                       env: dict[str, str], message: str) -> None:
    with pytest.raises((SettingsError, ValueError), match=message):
        environment(env)


@mock_aws
def test_iam_auth_signs_a_fresh_token_for_every_new_connection(
        environment: Callable[[dict[str, str]], DatabaseSettings]) -> None:
    # Given IAM settings for an RDS Proxy endpoint
    settings = environment({
        "DB_AUTH": "iam", "DB_HOST": "genjobs.proxy-abc.us-east-1.rds.amazonaws.com", "DB_PORT": "5432",
        "DB_NAME": "genjobs", "DB_USER": "genjobs_app", "AWS_REGION": "us-east-1",
    })
    provider = credentials_for(settings)
    assert provider is not None

    # When two connections are opened
    first, second = provider(), provider()

    # Then each gets a signed rds-db:connect token for that host and user, with TLS required
    for kwargs in (first, second):
        assert kwargs["host"] == settings.host and kwargs["user"] == "genjobs_app"
        assert kwargs["sslmode"] == "require"
        token = urlparse("https://" + kwargs["password"])
        query = parse_qs(token.query)
        assert token.hostname == settings.host and query["Action"] == ["connect"]
        assert query["DBUser"] == ["genjobs_app"] and "X-Amz-Signature" in query
    assert settings.conninfo == ""  # no secret ever lives in the static connection string


@mock_aws
def test_secret_auth_reads_the_rds_secret_and_connects(
        database_url: str, environment: Callable[[dict[str, str]], DatabaseSettings]) -> None:
    # Given a Secrets Manager secret in the RDS JSON shape pointing at the test database
    parts = conninfo_to_dict(database_url)
    client = boto3.client("secretsmanager", region_name="us-east-1")
    arn = client.create_secret(Name="genjobs/db", SecretString=json.dumps({
        "username": parts.get("user", "postgres"), "password": "not-checked-by-trust-auth",
        "host": parts["host"], "port": 5432, "dbname": parts["dbname"],
    }))["ARN"]

    # When the layer builds its database from the environment with DB_AUTH=secret
    database = Database(environment({"DB_AUTH": "secret", "DB_SECRET_ID": arn, "DB_NAME": str(parts["dbname"]),
                                     "AWS_REGION": "us-east-1"}))
    try:
        # Then it connects with the secret's credentials (TLS is not used on a Unix socket)
        assert database.fetch_value("SELECT current_database()") == parts["dbname"]
        assert database.fetch_value("SELECT current_user") == parts.get("user", "postgres")
    finally:
        database.close()


def test_pool_connections_never_prepare_and_run_in_autocommit(database_url: str) -> None:
    database = Database(DatabaseSettings(url=database_url))
    try:
        with database.connection() as conn:
            assert conn.prepare_threshold is None
            assert conn.autocommit is True
        assert database.settings.max_lifetime_seconds < 1800  # below RDS Proxy IdleClientTimeout
    finally:
        database.close()


def test_verify_full_needs_a_ca_bundle_file(environment: Callable[[dict[str, str]], DatabaseSettings],
                                            tmp_path: Path) -> None:
    base = {"DB_AUTH": "password", "DB_HOST": "proxy", "DB_USER": "genjobs_app", "DB_PASSWORD": "x"}
    # Without a bundle: TLS without verification (a local server without a CA)
    assert environment(base).sslmode == "require"
    # verify-full asked for, but no bundle (or one that does not exist): refused at start-up, naming the variable
    with pytest.raises(ValueError, match="DB_SSLROOTCERT pointing at a CA bundle file"):
        environment({**base, "DB_SSLMODE": "verify-full"})
    with pytest.raises(ValueError, match="DB_SSLROOTCERT"):
        environment({**base, "DB_SSLMODE": "verify-full", "DB_SSLROOTCERT": str(tmp_path / "missing.pem")})
    # A bundle given: verify-full by default, and every connection asks libpq to verify against it
    bundle = tmp_path / "amazon-trust-services-roots.pem"
    bundle.write_text("-----BEGIN CERTIFICATE-----\n")
    settings = environment({**base, "DB_SSLROOTCERT": str(bundle)})
    provider = credentials_for(settings)
    assert settings.sslmode == "verify-full" and provider is not None
    assert (provider()["sslmode"], provider()["sslrootcert"]) == ("verify-full", str(bundle))


@pytest.mark.allow_session_state("SET LOCAL inside the test's own transaction stands in for the role's lock_timeout")
def test_a_lock_wait_past_lock_timeout_is_a_database_timeout(database_url: str) -> None:
    # Given a row locked by another transaction
    database = Database(DatabaseSettings(url=database_url))
    holder = psycopg.connect(database_url)
    try:
        holder.execute("CREATE TABLE lock_probe (id int PRIMARY KEY)")
        holder.execute("INSERT INTO lock_probe VALUES (1)")
        holder.commit()
        holder.execute("SELECT * FROM lock_probe WHERE id = 1 FOR UPDATE")

        # When a request waits for it longer than its lock_timeout (sql/030 sets one on the role)
        with pytest.raises(DatabaseTimeout), database.transaction() as session:
            session.execute("SET LOCAL lock_timeout = '50ms'")
            session.execute("UPDATE lock_probe SET id = 2 WHERE id = 1")
    finally:
        holder.rollback()
        holder.close()
        database.close()
