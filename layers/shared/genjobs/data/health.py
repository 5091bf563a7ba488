from __future__ import annotations

from dataclasses import dataclass

from psycopg import errors as pg_errors

from genjobs.db import Database


@dataclass(frozen=True)
class ServerInfo:
    server_version: str
    applied_versions: list[int]


def read_server_info(db: Database) -> ServerInfo:
    """Server version and applied migration versions, in one round trip."""
    try:
        row = db.fetch_one(
            "SELECT current_setting('server_version') AS server_version, "
            "coalesce((SELECT array_agg(version ORDER BY version) FROM schema_migrations), '{}') AS applied"
        )
    except pg_errors.UndefinedTable:
        return ServerInfo(server_version=str(db.fetch_value("SELECT current_setting('server_version')")),
                          applied_versions=[])
    assert row is not None
    return ServerInfo(server_version=row["server_version"], applied_versions=list(row["applied"]))
