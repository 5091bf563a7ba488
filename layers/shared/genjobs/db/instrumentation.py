"""Statement timing and statement observers.

Every statement the layer sends goes through `InstrumentedCursor.execute`: it is timed, logged at debug
level, logged as a warning above the slow-query threshold, and handed to any registered observer. Tests
and benchmarks register a `StatementRecorder` to count statements per request and to prove that no request
path sends session state through RDS Proxy. With no observer and debug logging off, the overhead is one
`perf_counter()` pair and two attribute checks per statement.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from time import perf_counter
from typing import Any, Protocol

import psycopg
from psycopg import sql
from psycopg.abc import Params
from psycopg.abc import QueryNoTemplate as Query

logger = logging.getLogger("genjobs.db")


class StatementObserver(Protocol):
    def __call__(self, statement: str, elapsed_ms: float) -> None: ...


class _Instrumentation:
    def __init__(self) -> None:
        self.slow_query_ms = 250.0
        self.observers: list[StatementObserver] = []
        self._lock = threading.Lock()

    def add(self, observer: StatementObserver) -> None:
        with self._lock:
            self.observers = [*self.observers, observer]

    def remove(self, observer: StatementObserver) -> None:
        with self._lock:
            self.observers = [o for o in self.observers if o is not observer]


instrumentation = _Instrumentation()


def render(query: Query | str, conn: psycopg.Connection[Any]) -> str:
    if isinstance(query, str):
        return query
    if isinstance(query, bytes):
        return query.decode("utf-8", "replace")
    if isinstance(query, sql.Composable):
        return query.as_string(conn)
    return str(query)


def after_statement(conn: psycopg.Connection[Any], query: Query | str, elapsed_ms: float) -> None:
    observers = instrumentation.observers
    slow = elapsed_ms >= instrumentation.slow_query_ms
    if not (observers or slow or logger.isEnabledFor(logging.DEBUG)):
        return
    text = render(query, conn)
    for observer in observers:
        observer(text, elapsed_ms)
    if slow:
        logger.warning("slow query %.1f ms: %s", elapsed_ms, _shorten(text))
    else:
        logger.debug("query %.2f ms: %s", elapsed_ms, _shorten(text))


def _shorten(text: str, limit: int = 500) -> str:
    flat = " ".join(text.split())
    return flat if len(flat) <= limit else flat[:limit] + "…"


class InstrumentedCursor(psycopg.Cursor[Any]):
    """The cursor class of every pooled connection (set through `cursor_factory`)."""

    def execute(  # type: ignore[override]
        self,
        query: Query,
        params: Params | None = None,
        *,
        prepare: bool | None = None,
        binary: bool | None = None,
    ) -> InstrumentedCursor:
        started = perf_counter()
        try:
            super().execute(query, params, prepare=prepare, binary=binary)
        finally:
            after_statement(self.connection, query, (perf_counter() - started) * 1000.0)
        return self


@dataclass
class StatementRecorder:
    """Collects the statements sent while it is installed (test and benchmark use)."""

    statements: list[str] = field(default_factory=list)
    timings_ms: list[float] = field(default_factory=list)

    def __call__(self, statement: str, elapsed_ms: float) -> None:
        self.statements.append(statement)
        self.timings_ms.append(elapsed_ms)

    def clear(self) -> None:
        self.statements.clear()
        self.timings_ms.clear()

    @property
    def count(self) -> int:
        return len(self.statements)


@contextmanager
def record_statements() -> Iterator[StatementRecorder]:
    recorder = StatementRecorder()
    instrumentation.add(recorder)
    try:
        yield recorder
    finally:
        instrumentation.remove(recorder)
