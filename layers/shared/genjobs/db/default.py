"""The process-wide database: built from the environment on first use, shared by every request."""

from __future__ import annotations

import os
import threading
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from typing import Any

from psycopg.abc import Params
from psycopg.abc import QueryNoTemplate as Query

from genjobs.db.database import Database, Row, Session
from genjobs.db.settings import (
    CredentialProvider,
    DatabaseSettings,
    iam_credentials,
    password_credentials,
    secret_credentials,
)

_database: Database | None = None
_lock = threading.Lock()


def _rds_client() -> Any:
    import boto3  # imported lazily: only IAM-authenticated containers pay for it

    return boto3.client("rds")


def _fetch_secret(secret_id: str) -> Mapping[str, Any]:
    from aws_lambda_powertools.utilities import parameters

    value = parameters.get_secret(secret_id, transform="json", max_age=300)
    if not isinstance(value, Mapping):
        raise ValueError(f"secret {secret_id} is not a JSON object")
    return value


def credentials_for(settings: DatabaseSettings) -> CredentialProvider | None:
    if settings.auth == "iam":
        return iam_credentials(settings, _rds_client)
    if settings.auth == "secret":
        return secret_credentials(settings, _fetch_secret)
    if settings.auth == "password":
        return password_credentials(settings)
    return None


def database_from_env(env: Mapping[str, str] | None = None) -> Database:
    settings = DatabaseSettings.from_env(os.environ if env is None else env)
    return Database(settings, credentials=credentials_for(settings))


def get_database() -> Database:
    """The module-level database of this process, opened lazily from the environment."""
    global _database  # noqa: PLW0603 - one pool per container is the point
    db = _database
    if db is None:
        with _lock:
            if _database is None:
                _database = database_from_env()
            db = _database
    return db


def set_database(db: Database | None) -> Database | None:
    """Replace the process-wide database (tests, the local runner); returns the previous one."""
    global _database
    with _lock:
        previous, _database = _database, db
    return previous


def fetch_one(query: Query, params: Params | None = None, *, row: type[Any] | None = None) -> Any:
    with get_database().session() as session:
        return session._fetch_one(query, params, row)


def fetch_all(query: Query, params: Params | None = None, *, row: type[Any] | None = None) -> Any:
    with get_database().session() as session:
        return session._fetch_all(query, params, row)


def execute(query: Query, params: Params | None = None) -> int:
    return get_database().execute(query, params)


@contextmanager
def transaction() -> Iterator[Session]:
    with get_database().transaction() as session:
        yield session


__all__ = ["Row", "database_from_env", "execute", "fetch_all", "fetch_one", "get_database", "set_database",
           "transaction"]
