"""Database access for the genjobs layer: pool, settings, query helpers, migrations."""

from genjobs.db.database import Database, PooledConnection, Row, Session
from genjobs.db.default import (
    database_from_env,
    execute,
    fetch_all,
    fetch_one,
    get_database,
    set_database,
    transaction,
)
from genjobs.db.instrumentation import StatementRecorder, record_statements
from genjobs.db.settings import DatabaseSettings

__all__ = [
    "Database",
    "DatabaseSettings",
    "PooledConnection",
    "Row",
    "Session",
    "StatementRecorder",
    "database_from_env",
    "execute",
    "fetch_all",
    "fetch_one",
    "get_database",
    "record_statements",
    "set_database",
    "transaction",
]
