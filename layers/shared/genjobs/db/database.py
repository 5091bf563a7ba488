"""The layer's database access: a lazily opened connection pool and parameterized query helpers.

Lambda runs one request at a time per container, so the pool holds one connection by default. Pooled
connections run in autocommit: a single statement is one network round trip, and `transaction()` wraps
several statements in BEGIN/COMMIT when a write spans rows.

Stale connections. A container can be frozen for minutes; meanwhile the server or RDS Proxy may close its
connection. Pinging on every checkout would cost a round trip on every warm request, so the pool's check
does two cheap things instead:

* it polls the socket without blocking (a system call, no network traffic): an idle PostgreSQL connection
  never has unread input, so readable data means the server said goodbye (`pg_terminate_backend`, a
  restart, the proxy closing it); then, and only then, it pings;
* it pings a connection that sat idle longer than `DB_IDLE_CHECK_SECONDS` (default 60 s), which catches a
  peer that vanished without a word (a dropped NAT entry).

A failed check makes the pool discard the connection and hand out a fresh one, so the request succeeds.
Connections are recycled after `max_lifetime` (25 min), below RDS Proxy's idle client timeout (30 min).
"""

from __future__ import annotations

import logging
import math
import select
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from time import monotonic
from typing import Any, TypeVar, overload

import psycopg
from psycopg import errors as pg_errors
from psycopg.abc import Params
from psycopg.abc import QueryNoTemplate as Query
from psycopg.rows import RowFactory, class_row, dict_row
from psycopg_pool import ConnectionPool, PoolTimeout

from genjobs.db.credentials import CredentialProvider, credentials_for
from genjobs.db.instrumentation import InstrumentedCursor, instrumentation
from genjobs.errors import DatabaseTimeout, DatabaseUnavailable
from genjobs.settings import DatabaseSettings

logger = logging.getLogger("genjobs.db")

T = TypeVar("T")
Row = dict[str, Any]


class PooledConnection(psycopg.Connection[Any]):
    """A pooled connection that remembers when it was last handed back to the pool."""

    last_used_at: float | None = None


def _has_unread_input(conn: PooledConnection) -> bool:
    try:
        fd = conn.pgconn.socket
    except psycopg.OperationalError:
        return True
    poller = select.poll()
    poller.register(fd, select.POLLIN | select.POLLERR | select.POLLHUP)
    return bool(poller.poll(0))


def _row_factory(row: type[Any] | None) -> RowFactory[Any]:
    return dict_row if row is None else class_row(row)


class Session:
    """Query helpers bound to one connection (inside `Database.transaction()` or `Database.session()`)."""

    def __init__(self, conn: psycopg.Connection[Any]) -> None:
        self.conn = conn

    @overload
    def fetch_one(self, query: Query, params: Params | None = None) -> Row | None: ...
    @overload
    def fetch_one(self, query: Query, params: Params | None = None, *, row: type[T]) -> T | None: ...
    def fetch_one(self, query: Query, params: Params | None = None, *, row: type[Any] | None = None) -> Any:
        return self._fetch_one(query, params, row)

    def _fetch_one(self, query: Query, params: Params | None, row: type[Any] | None) -> Any:
        with self.conn.cursor(row_factory=_row_factory(row)) as cur:
            cur.execute(query, params)
            return cur.fetchone()

    @overload
    def fetch_all(self, query: Query, params: Params | None = None) -> list[Row]: ...
    @overload
    def fetch_all(self, query: Query, params: Params | None = None, *, row: type[T]) -> list[T]: ...
    def fetch_all(self, query: Query, params: Params | None = None, *, row: type[Any] | None = None) -> Any:
        return self._fetch_all(query, params, row)

    def _fetch_all(self, query: Query, params: Params | None, row: type[Any] | None) -> Any:
        with self.conn.cursor(row_factory=_row_factory(row)) as cur:
            cur.execute(query, params)
            return cur.fetchall()

    def fetch_value(self, query: Query, params: Params | None = None) -> Any:
        """The first column of the first row, or None when there is no row."""
        with self.conn.cursor() as cur:
            cur.execute(query, params)
            found = cur.fetchone()
            return None if found is None else found[0]

    def execute(self, query: Query, params: Params | None = None) -> int:
        """Run a statement and return the number of rows it affected."""
        with self.conn.cursor() as cur:
            cur.execute(query, params)
            return cur.rowcount


class Database:
    """A lazily opened connection pool plus query helpers; one per process (see `genjobs.dependencies`).

    `credentials` defaults to the provider for the settings' auth mode (IAM token, secret, password)."""

    def __init__(
        self,
        settings: DatabaseSettings,
        *,
        credentials: CredentialProvider | None = None,
        name: str = "genjobs",
    ) -> None:
        settings.check()
        self.settings = settings
        self._credentials = credentials if credentials is not None else credentials_for(settings)
        self._name = name
        self._pool: ConnectionPool[PooledConnection] | None = None
        self._lock = threading.Lock()
        instrumentation.slow_query_ms = settings.slow_query_ms

    # -- pool lifecycle -------------------------------------------------------------------------------

    def _connect_kwargs(self) -> dict[str, Any]:
        kwargs: dict[str, Any] = {
            "autocommit": True,
            # RDS Proxy pins a session on server-side prepared statements; never prepare.
            "prepare_threshold": None,
            "cursor_factory": InstrumentedCursor,
            "connect_timeout": max(1, math.ceil(self.settings.connect_timeout_seconds)),
        }
        if self.settings.auth == "url":
            kwargs["application_name"] = self.settings.application_name
        if self._credentials is not None:
            kwargs.update(self._credentials())
        return kwargs

    def _check_before_use(self, conn: PooledConnection) -> None:
        idle_for = 0.0 if conn.last_used_at is None else monotonic() - conn.last_used_at
        if idle_for >= self.settings.idle_check_seconds or _has_unread_input(conn):
            ConnectionPool.check_connection(conn)

    def _open_pool(self) -> ConnectionPool[PooledConnection]:
        pool: ConnectionPool[PooledConnection] = ConnectionPool(
            conninfo=self.settings.conninfo,
            kwargs=self._connect_kwargs,
            connection_class=PooledConnection,
            min_size=self.settings.pool_min_size,
            max_size=self.settings.pool_max_size,
            open=False,
            check=self._check_before_use,
            name=self._name,
            timeout=self.settings.connect_timeout_seconds,
            max_lifetime=self.settings.max_lifetime_seconds,
            reconnect_timeout=max(10.0, 3 * self.settings.connect_timeout_seconds),
            num_workers=1,
        )
        pool.open(wait=False)
        return pool

    @property
    def pool(self) -> ConnectionPool[PooledConnection]:
        pool = self._pool
        if pool is None:
            with self._lock:
                if self._pool is None:
                    self._pool = self._open_pool()
                pool = self._pool
        return pool

    def _discard_pool(self, pool: ConnectionPool[PooledConnection]) -> None:
        """Drop a pool that cannot connect, so the next request reconnects at once instead of waiting
        for the pool's own reconnection backoff."""
        with self._lock:
            if self._pool is pool:
                self._pool = None
        try:
            pool.close(timeout=0)
        except Exception:  # closing a broken pool must not mask the original error
            logger.debug("error closing a discarded pool", exc_info=True)

    def close(self) -> None:
        with self._lock:
            pool, self._pool = self._pool, None
        if pool is not None:
            pool.close()

    # -- connections ----------------------------------------------------------------------------------

    @contextmanager
    def connection(self) -> Iterator[psycopg.Connection[Any]]:
        """A pooled connection for the duration of the block; database failures become domain errors."""
        pool = self.pool
        conn: PooledConnection | None = None
        try:
            with pool.connection() as conn:
                try:
                    yield conn
                finally:
                    # stamped here rather than in a pool `reset` callback, which would hand every returned
                    # connection to the pool's worker thread
                    conn.last_used_at = monotonic()
        except PoolTimeout as exc:
            stats = pool.get_stats()
            if stats.get("pool_size", 0) == 0 or stats.get("connections_errors", 0):
                self._discard_pool(pool)
                raise DatabaseUnavailable("The database cannot be reached; retry shortly.") from exc
            raise DatabaseUnavailable("The database is busy; retry shortly.", retry_after_seconds=1) from exc
        except (pg_errors.QueryCanceled, pg_errors.LockNotAvailable) as exc:
            # the role's statement_timeout or lock_timeout (sql/030 sets both): a busy database, not a bug
            raise DatabaseTimeout("The database took too long to answer; retry shortly.") from exc
        except (psycopg.OperationalError, psycopg.InterfaceError) as exc:
            if conn is None or conn.broken or conn.closed:
                raise DatabaseUnavailable("The database connection was lost; retry shortly.") from exc
            raise

    @contextmanager
    def session(self) -> Iterator[Session]:
        """Several autocommit statements on one connection (each its own round trip)."""
        with self.connection() as conn:
            yield Session(conn)

    @contextmanager
    def transaction(self) -> Iterator[Session]:
        """Statements in one transaction: all of them commit, or none (an exception rolls back)."""
        with self.connection() as conn, conn.transaction():
            yield Session(conn)

    # -- one-statement helpers ------------------------------------------------------------------------

    @overload
    def fetch_one(self, query: Query, params: Params | None = None) -> Row | None: ...
    @overload
    def fetch_one(self, query: Query, params: Params | None = None, *, row: type[T]) -> T | None: ...
    def fetch_one(self, query: Query, params: Params | None = None, *, row: type[Any] | None = None) -> Any:
        with self.connection() as conn:
            return Session(conn)._fetch_one(query, params, row)

    @overload
    def fetch_all(self, query: Query, params: Params | None = None) -> list[Row]: ...
    @overload
    def fetch_all(self, query: Query, params: Params | None = None, *, row: type[T]) -> list[T]: ...
    def fetch_all(self, query: Query, params: Params | None = None, *, row: type[Any] | None = None) -> Any:
        with self.connection() as conn:
            return Session(conn)._fetch_all(query, params, row)

    def fetch_value(self, query: Query, params: Params | None = None) -> Any:
        with self.connection() as conn:
            return Session(conn).fetch_value(query, params)

    def execute(self, query: Query, params: Params | None = None) -> int:
        with self.connection() as conn:
            return Session(conn).execute(query, params)

