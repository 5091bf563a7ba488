"""The test PostgreSQL: `DATABASE_URL` when set, otherwise an embedded server from pgserver.

Migrations are applied once into a template database; each test gets its own clone (CREATE DATABASE
... TEMPLATE), so tests are independent and cloning costs milliseconds.
"""

from __future__ import annotations

import contextlib
import os
import subprocess
import tempfile
import uuid
from dataclasses import dataclass, field
from pathlib import Path

import psycopg
from psycopg import sql
from psycopg.conninfo import conninfo_to_dict, make_conninfo


@dataclass
class PostgresCluster:
    admin_url: str
    server: object | None = None  # the pgserver handle when embedded
    pgdata: Path | None = None
    created: list[str] = field(default_factory=list)

    def url_for(self, dbname: str) -> str:
        return make_conninfo(self.admin_url, dbname=dbname)

    def admin(self) -> psycopg.Connection[tuple[object, ...]]:
        return psycopg.connect(self.admin_url, autocommit=True)

    def create_database(self, name: str, template: str | None = None) -> str:
        with self.admin() as conn:
            if template:
                conn.execute(sql.SQL("CREATE DATABASE {} TEMPLATE {}").format(
                    sql.Identifier(name), sql.Identifier(template)))
            else:
                conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
        self.created.append(name)
        return self.url_for(name)

    def drop_database(self, name: str) -> None:
        with self.admin() as conn:
            conn.execute(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name)))
        if name in self.created:
            self.created.remove(name)

    def unique_name(self, prefix: str) -> str:
        return f"{prefix}_{uuid.uuid4().hex[:12]}"

    def close(self) -> None:
        for name in list(self.created):
            with contextlib.suppress(psycopg.Error):
                self.drop_database(name)
        if self.server is not None:
            self.server.cleanup()  # type: ignore[attr-defined]


def start_embedded(pgdata: Path | None = None) -> PostgresCluster:
    import pgserver

    pgdata = pgdata or Path(tempfile.mkdtemp(prefix="genjobs-pg-"))
    server = pgserver.get_server(pgdata, cleanup_mode="delete")
    return PostgresCluster(admin_url=server.get_uri(), server=server, pgdata=pgdata)


def cluster_from_env() -> PostgresCluster:
    url = os.environ.get("DATABASE_URL")
    if url:
        return PostgresCluster(admin_url=url)
    return start_embedded()


class EmbeddedServerControl:
    """Stop and start a dedicated embedded server, for tests of database outages."""

    def __init__(self) -> None:
        import pgserver
        from pgserver import _commands

        self._commands = _commands
        self.pgdata = Path(tempfile.mkdtemp(prefix="genjobs-pg-outage-"))
        self.server = pgserver.get_server(self.pgdata, cleanup_mode="delete")
        self.url = self.server.get_uri()
        self.socket_dir = conninfo_to_dict(self.url)["host"]

    def _pg_ctl(self, *args: str) -> None:
        self._commands.pg_ctl(list(args), pgdata=self.pgdata, user=self.server.system_user, timeout=30)

    def stop(self) -> None:
        self._pg_ctl("-w", "-m", "immediate", "stop")

    def start(self) -> None:
        self._pg_ctl("-w", "-o", '-h ""', "-o", f"-k {self.socket_dir}", "-l", str(self.pgdata / "log"), "start")

    def close(self) -> None:
        with contextlib.suppress(subprocess.CalledProcessError, AssertionError):
            self.server.cleanup()
