"""Database access for the genjobs layer: the pool with its query helpers, statement instrumentation,
migrations. SQL itself lives in `genjobs.data`."""

from genjobs.db.database import Database, PooledConnection, Row, Session
from genjobs.db.instrumentation import StatementRecorder, record_statements
from genjobs.settings import DatabaseSettings

__all__ = [
    "Database",
    "DatabaseSettings",
    "PooledConnection",
    "Row",
    "Session",
    "StatementRecorder",
    "record_statements",
]
