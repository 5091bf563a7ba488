"""Calling the real handlers in-process, and seeing what they send to the database.

* `BenchDatabase` is the layer's `Database` whose cursors also keep each statement's parameters while a
  `capture()` block is open (the layer's `record_statements()` sees only the SQL text): the scale part
  EXPLAINs exactly what a handler sent, and the overhead part replays it through raw psycopg.
* `RoundTripTracer` counts network round trips with libpq's protocol trace: a round trip is one batch of
  frontend messages followed by the server's answer (BEGIN, COMMIT and pings included).
* `NoopInvoker`, `MemoryStore` and `FastProvider` stand in for Lambda, S3 and Bedrock.
"""

from __future__ import annotations

import contextlib
import os
import tempfile
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from types import ModuleType
from typing import Any

import psycopg
from genjobs.db import Database, DatabaseSettings
from genjobs.db.instrumentation import InstrumentedCursor
from genjobs.ports import GeneratedImage, ImageRequest, StoredObject, VideoRequest, VideoStatus
from psycopg import sql

from local_runner.context import LambdaContext
from local_runner.media import render_png

# -- statements with their parameters ---------------------------------------------------------------------


@dataclass
class Captured:
    query: Any
    params: Any

    @property
    def text(self) -> str:
        """The SQL as sent (a `psycopg.sql` composition rendered, as psycopg does on every execute)."""
        q = self.query
        if isinstance(q, bytes):
            return q.decode("utf-8", "replace")
        if isinstance(q, sql.Composable):
            return q.as_string(None)
        return q if isinstance(q, str) else str(q)

    def rendered(self) -> Captured:
        """The same statement with its SQL as a plain string, as a hand-written psycopg caller would pass it."""
        return Captured(self.text, self.params)


_capture_stack: list[list[Captured]] = []


class CapturingCursor(InstrumentedCursor):
    def execute(self, query: Any, params: Any = None, *, prepare: bool | None = None,
                binary: bool | None = None) -> CapturingCursor:
        # the pool's liveness check of a connection idle for long (psycopg_pool's check_connection) sends an
        # empty statement through this cursor too: it is not the request's, and EXPLAIN cannot take it
        if _capture_stack and Captured(query, params).text.strip():
            _capture_stack[-1].append(Captured(query, params))
        super().execute(query, params, prepare=prepare, binary=binary)
        return self


@contextlib.contextmanager
def capture() -> Iterator[list[Captured]]:
    found: list[Captured] = []
    _capture_stack.append(found)
    try:
        yield found
    finally:
        _capture_stack.remove(found)


class BenchDatabase(Database):
    """The layer's Database (same pool, settings and checks) with parameter-capturing cursors."""

    def _connect_kwargs(self) -> dict[str, Any]:
        kwargs = super()._connect_kwargs()
        kwargs["cursor_factory"] = CapturingCursor
        return kwargs


def layer_database(url: str, *, capturing: bool = False) -> Database:
    """A database configured as in a Lambda container: one pooled connection."""
    settings = DatabaseSettings(url=url, pool_min_size=1, pool_max_size=1)
    return BenchDatabase(settings) if capturing else Database(settings)


# -- network round trips ---------------------------------------------------------------------------------


class RoundTripTracer:
    """libpq protocol trace on the (single) pooled connection of a database."""

    def __init__(self, db: Database) -> None:
        with db.connection() as conn:
            self.conn: psycopg.Connection[Any] = conn
        fd, self.path = tempfile.mkstemp(prefix="genjobs-bench-trace-")
        os.close(fd)
        # O_APPEND: libpq's FILE* keeps its own offset, appending makes truncation between requests safe
        self.fd = os.open(self.path, os.O_WRONLY | os.O_APPEND)

    def start(self) -> None:
        os.ftruncate(self.fd, 0)
        self.conn.pgconn.trace(self.fd)
        self.conn.pgconn.set_trace_flags(psycopg.pq.Trace.SUPPRESS_TIMESTAMPS | psycopg.pq.Trace.REGRESS_MODE)

    def stop(self) -> int:
        """Stop tracing; the number of round trips since start() (-1 when the connection was replaced)."""
        with contextlib.suppress(psycopg.Error):
            self.conn.pgconn.untrace()
        with open(self.path, encoding="utf-8", errors="replace") as f:
            lines = f.read().splitlines()
        trips, sending = 0, False
        for line in lines:
            direction = line.split("\t", 1)[0]
            if direction == "F" and not sending:
                trips, sending = trips + 1, True
            elif direction == "B":
                sending = False
        return trips

    def close(self) -> None:
        with contextlib.suppress(OSError):
            os.close(self.fd)
        with contextlib.suppress(OSError):
            os.unlink(self.path)


# -- stand-ins for Lambda, S3 and Bedrock ------------------------------------------------------------------


@dataclass
class NoopInvoker:
    """The async invoke is accepted and goes nowhere (the benchmarks drive the worker themselves)."""

    calls: int = 0

    def invoke_async(self, function_name: str, payload: Mapping[str, Any]) -> None:
        self.calls += 1

    def invoke_sync(self, function_name: str, payload: Mapping[str, Any]) -> Any:
        self.calls += 1
        return {"ok": True, "result": None}


@dataclass
class MemoryStore:
    """Keeps sizes only: the lifecycle benchmark stores thousands of images."""

    bucket: str = "genjobs-bench-media"
    sizes: dict[str, int] = field(default_factory=dict)

    def put(self, key: str, data: bytes, content_type: str) -> StoredObject:
        self.sizes[key] = len(data)
        if len(self.sizes) > 10_000:
            self.sizes.clear()
        return StoredObject(bucket=self.bucket, key=key, url=self.url_for(key), size_bytes=len(data),
                            content_type=content_type)

    def get(self, key: str) -> bytes:
        return render_png(0, 8)

    def url_for(self, key: str) -> str:
        return f"https://media.bench.invalid/{key}"

    def delete(self, keys: Any) -> None:
        for key in keys:
            self.sizes.pop(key, None)


class FastProvider:
    """An image model that answers at once with a tiny PNG, and a video model that is always in progress."""

    def __init__(self) -> None:
        self.png = render_png(0, 8)
        self.started = 0

    def generate_image(self, request: ImageRequest) -> GeneratedImage:
        return GeneratedImage(data=self.png, content_type="image/png", width=request.width, height=request.height)

    def start_video(self, request: VideoRequest) -> str:
        self.started += 1
        return f"arn:aws:bedrock:us-east-1:123456789012:async-invoke/bench{self.started}"

    def get_video_status(self, invocation_arn: str) -> VideoStatus:
        return VideoStatus(status="InProgress")


# -- handlers ---------------------------------------------------------------------------------------------


FUNCTIONS = ("generation", "worker", "progress", "limits", "approval", "migrate", "maintenance")


def handler_modules() -> dict[str, ModuleType]:
    import importlib

    return {name: importlib.import_module(f"functions.{name}.app") for name in FUNCTIONS}


def call(module: ModuleType, event: dict[str, Any]) -> dict[str, Any]:
    context = LambdaContext("genjobs-bench", memory_mb=1024, timeout_seconds=30.0)
    result: dict[str, Any] = module.lambda_handler(event, context)
    return result


def is_missing(response: Mapping[str, Any]) -> bool:
    """The handler does not know this route (404 "No such route.") or this action (the discriminator)."""
    import json

    if "statusCode" in response:
        if response["statusCode"] != 404:
            return False
        body = json.loads(response.get("body") or "{}")
        return bool(body.get("error", {}).get("message") == "No such route.")
    error = response.get("error") or {}
    if response.get("ok") is not False or error.get("code") != "VALIDATION_ERROR":
        return False
    for err in (error.get("details") or {}).get("errors", []):
        if err.get("type") in ("union_tag_invalid", "literal_error") and list(err.get("location", []))[-1:] == [
                "action"]:
            return True
        if err.get("type") == "union_tag_invalid":
            return True
    return False


def succeeded(response: Mapping[str, Any]) -> bool:
    if "records" in response:  # S3 notifications: what became of each record
        return all(r.get("outcome") != "ignored" for r in response["records"])
    if "statusCode" in response:
        return 200 <= int(response["statusCode"]) < 300
    return response.get("ok") is True


def outcome(response: Mapping[str, Any]) -> str:
    """What a response says in a table cell: the status code, or ok / the error code."""
    import json

    if "records" in response:
        return ", ".join(str(r.get("outcome")) for r in response["records"]) or "no records"
    if "statusCode" in response:
        status = int(response["statusCode"])
        if status < 300:
            return str(status)
        try:
            code = json.loads(response.get("body") or "{}").get("error", {}).get("code", "")
        except ValueError:
            code = ""
        return f"{status} {code}".strip()
    if response.get("ok") is True:
        return "ok"
    return str((response.get("error") or {}).get("code", "error"))
