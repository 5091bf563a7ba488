"""Test databases: opening one with overridden settings, and pointing the handlers at it (through
genjobs.dependencies, the one override point)."""

from __future__ import annotations

from genjobs import dependencies
from genjobs.db import Database, DatabaseSettings


def set_database(db: Database | None) -> Database | None:
    """The handlers use `db` from now on (None: the default from the settings); returns the one before."""
    previous: Database | None = dependencies.overrides().get("db")
    dependencies.override(db=db)
    return previous


def make_database(url: str, **overrides: object) -> Database:
    """A Database on `url` with any DatabaseSettings field overridden (pool sizes, timeouts)."""
    settings = DatabaseSettings(url=url, **overrides)  # type: ignore[arg-type]
    return Database(settings)
