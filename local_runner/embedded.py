"""The embedded PostgreSQL of `make run` and `make migrate`: pgserver, data kept under .local/pgdata.

pgserver reuses a running server for the same data directory and restarts one whose postmaster.pid is
stale (left by a killed run), so a second `make run` starts in about a second.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import psycopg
from psycopg import sql
from psycopg.conninfo import make_conninfo

ROOT = Path(__file__).resolve().parents[1]
DEFAULT_DATA_DIR = ROOT / ".local"
DATABASE_NAME = "genjobs"


class EmbeddedPostgres:
    def __init__(self, data_dir: Path | None = None) -> None:
        self.data_dir = (data_dir or Path(os.environ.get("GENJOBS_LOCAL_DIR", DEFAULT_DATA_DIR))).resolve()
        self._server: Any = None

    def start(self) -> str:
        """Start (or reuse) the server and make sure the `genjobs` database exists; return its URL."""
        import pgserver

        self.data_dir.mkdir(parents=True, exist_ok=True)
        self._server = pgserver.get_server(self.data_dir / "pgdata", cleanup_mode="stop")
        admin_url = self._server.get_uri()
        with psycopg.connect(admin_url, autocommit=True) as conn:
            exists = conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", (DATABASE_NAME,)).fetchone()
            if not exists:
                conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(DATABASE_NAME)))
        return make_conninfo(admin_url, dbname=DATABASE_NAME)

    def stop(self) -> None:
        if self._server is not None:
            self._server.cleanup()
            self._server = None


def database_url_or_embedded() -> tuple[str, EmbeddedPostgres | None]:
    """DATABASE_URL when set; otherwise the embedded server (started here)."""
    url = os.environ.get("DATABASE_URL")
    if url:
        return url, None
    embedded = EmbeddedPostgres()
    return embedded.start(), embedded
