"""The embedded PostgreSQL of `make run` and `make migrate`: pgserver, data kept under `.local/pgdata`
(`GENJOBS_LOCAL_DIR` moves it).

A run that was killed (kill -9, a closed terminal, a crash) leaves one of two things behind, and the next
run recovers from both:

* the server still running, with the dead run's pid in pgserver's handle list (`.handle_pids.json`): the
  server is reused, and the dead pid is dropped from the list, or pgserver would never stop the server again
  (it stops it only when the last live handle lets go);
* a `postmaster.pid` whose process is gone, or whose pid now belongs to an unrelated process: the file is
  removed and the server started afresh (PostgreSQL itself refuses to start while the pid in it is alive).

The server runs as a daemon (not a child of the runner); `stop()` shuts it down with `pg_ctl stop -m fast`.
"""

from __future__ import annotations

import contextlib
import json
import logging
import shutil
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import psutil
import psycopg
from psycopg import sql
from psycopg.conninfo import make_conninfo

from local_runner.settings import local_settings

ROOT = Path(__file__).resolve().parents[1]
DATABASE_NAME = "genjobs"
READY_TIMEOUT_SECONDS = 15.0

logger = logging.getLogger("local_runner.embedded")


def local_dir() -> Path:
    """Where the runner keeps its data: `GENJOBS_LOCAL_DIR`, default `.local/` in the repository."""
    return local_settings().local_dir


@dataclass(frozen=True)
class Postmaster:
    """The first lines of `postmaster.pid`."""

    pid: int
    data_dir: Path
    socket_dir: Path | None
    status: str

    @classmethod
    def read(cls, pgdata: Path) -> Postmaster | None:
        try:
            lines = (pgdata / "postmaster.pid").read_text().splitlines()
        except (FileNotFoundError, NotADirectoryError):
            return None
        try:
            socket_dir = lines[4].strip() if len(lines) > 4 else ""
            return cls(pid=int(lines[0]), data_dir=Path(lines[1]), socket_dir=Path(socket_dir) if socket_dir else None,
                       status=lines[7].strip() if len(lines) > 7 else "")
        except (IndexError, ValueError):
            return cls(pid=-1, data_dir=pgdata, socket_dir=None, status="")  # half-written file: stale

    def process(self) -> psutil.Process | None:
        """The live postmaster process this file describes, or None when the pid is dead or belongs to
        another program (a pid reused after a crash or reboot)."""
        return _live_postgres(self.pid)


def _live_postgres(pid: int) -> psutil.Process | None:
    if pid <= 0:
        return None
    try:
        proc = psutil.Process(pid)
        if proc.status() == psutil.STATUS_ZOMBIE:  # killed, not yet reaped: PostgreSQL still sees it alive
            return None
        name = proc.name()
        cmdline = proc.cmdline()
    except (psutil.NoSuchProcess, psutil.AccessDenied, psutil.ZombieProcess):
        return None
    if name != "postgres" and not (cmdline and Path(cmdline[0]).name == "postgres"):
        return None
    return proc


def orphans(pgdata: Path) -> list[psutil.Process]:
    """PostgreSQL processes still working in `pgdata` (backends of a postmaster that was killed)."""
    found = []
    target = pgdata.resolve()
    for proc in psutil.process_iter(["name"]):
        if proc.info.get("name") != "postgres":
            continue
        with contextlib.suppress(psutil.Error, OSError):
            if proc.status() != psutil.STATUS_ZOMBIE and Path(proc.cwd()).resolve() == target:
                found.append(proc)
    return found


def _clear_after_dead_postmaster(postmaster: Postmaster, pgdata: Path, actions: list[str]) -> None:
    """The postmaster is gone: let its orphaned backends finish (they notice within moments), then remove
    the pid file and socket lock files that would make a new server refuse to start."""
    deadline = time.monotonic() + 5.0
    leftovers = orphans(pgdata)
    while leftovers and time.monotonic() < deadline:
        time.sleep(0.1)
        leftovers = orphans(pgdata)
    for proc in leftovers:
        with contextlib.suppress(psutil.Error):
            proc.kill()
            actions.append(f"killed orphaned PostgreSQL process {proc.pid}")
    (pgdata / "postmaster.pid").unlink(missing_ok=True)
    actions.append(f"removed a stale postmaster.pid (pid {postmaster.pid} is not a running server)")
    socket_dir = postmaster.socket_dir or pgdata
    for lock in socket_dir.glob(".s.PGSQL.*.lock"):
        try:
            pid = int(lock.read_text().splitlines()[0])
        except (OSError, IndexError, ValueError):
            pid = -1
        if _live_postgres(pid) is None:
            lock.unlink(missing_ok=True)
            actions.append(f"removed a stale socket lock {lock.name}")


def _handle_list(pgdata: Path) -> Path:
    return pgdata / ".handle_pids.json"


def _live_pids(pids: list[int]) -> list[int]:
    alive = []
    for pid in pids:
        with contextlib.suppress(psutil.Error):
            if psutil.Process(pid).status() != psutil.STATUS_ZOMBIE:
                alive.append(pid)
    return alive


def recover_stale_state(pgdata: Path) -> list[str]:
    """Undo what a killed run left in `pgdata`; returns what was done (for the log)."""
    actions: list[str] = []
    handles = _handle_list(pgdata)
    if handles.exists():
        try:
            pids = [int(p) for p in json.loads(handles.read_text() or "[]")]
        except (ValueError, TypeError):
            pids = []
        live = _live_pids(pids)
        if live != pids:
            handles.write_text(json.dumps(live))
            actions.append(f"dropped dead runner pid(s) {sorted(set(pids) - set(live))} from the server's handle list")

    postmaster = Postmaster.read(pgdata)
    if postmaster is None:
        if pgdata.exists() and any(pgdata.iterdir()) and not (pgdata / "PG_VERSION").exists():
            # initdb was interrupted: nothing in there is data yet, and initdb refuses a non-empty directory.
            shutil.rmtree(pgdata)
            actions.append("removed a data directory left half-initialised by an interrupted first run")
        return actions
    proc = postmaster.process()
    if proc is None:
        _clear_after_dead_postmaster(postmaster, pgdata, actions)
        return actions
    deadline = time.monotonic() + READY_TIMEOUT_SECONDS
    while postmaster is not None and postmaster.status != "ready" and time.monotonic() < deadline:
        # A server that is still starting, or stopping at the end of the previous run: wait for either.
        time.sleep(0.1)
        postmaster = Postmaster.read(pgdata)
    if postmaster is not None and postmaster.process() is not None:
        actions.append(f"reusing the server left running by an earlier run (pid {postmaster.pid})")
    return actions


class EmbeddedPostgres:
    def __init__(self, data_dir: Path | None = None) -> None:
        self.data_dir = (data_dir or local_dir()).resolve()
        self.pgdata = self.data_dir / "pgdata"
        self._server: Any = None
        self.recovered: list[str] = []

    def start(self) -> str:
        """Start (or reuse) the server and make sure the `genjobs` database exists; return its URL."""
        import pgserver
        from pgserver.postgres_server import PostgresServer

        self.data_dir.mkdir(parents=True, exist_ok=True)
        if self.pgdata.exists():
            with PostgresServer._lock:  # pgserver's inter-process lock around its handle list and pid file
                self.recovered = recover_stale_state(self.pgdata)
        for action in self.recovered:
            logger.warning("embedded PostgreSQL: %s", action)
        self._server = pgserver.get_server(self.pgdata, cleanup_mode="stop")
        admin_url: str = self._server.get_uri()
        with psycopg.connect(admin_url, autocommit=True, connect_timeout=10) as conn:
            exists = conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", (DATABASE_NAME,)).fetchone()
            if not exists:
                conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(DATABASE_NAME)))
        return make_conninfo(admin_url, dbname=DATABASE_NAME)

    @property
    def pid(self) -> int | None:
        postmaster = Postmaster.read(self.pgdata)
        return postmaster.pid if postmaster else None

    def stop(self) -> None:
        """Stop the server unless another live runner still uses it (pgserver counts the handles)."""
        if self._server is not None:
            server, self._server = self._server, None
            server.cleanup()


def database_url_or_embedded() -> tuple[str, EmbeddedPostgres | None]:
    """DATABASE_URL when set; otherwise the embedded server (started here)."""
    url = local_settings().database_url
    if url:
        return url, None
    embedded = EmbeddedPostgres()
    return embedded.start(), embedded
