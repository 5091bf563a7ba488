"""Pointing the handlers at a test database (through genjobs.dependencies, the one override point)."""

from __future__ import annotations

from genjobs import dependencies
from genjobs.db import Database


def set_database(db: Database | None) -> Database | None:
    """The handlers use `db` from now on (None: the default from the settings); returns the one before."""
    previous: Database | None = dependencies.overrides().get("db")
    dependencies.override(db=db)
    return previous
