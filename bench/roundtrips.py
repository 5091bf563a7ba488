"""Part 1 — statements and network round trips of one warm request, per route and direct-invoke action.

Each operation is sent twice on fresh state: the first request warms the path, the second is measured
with the layer's statement recorder (`genjobs.db.record_statements`) and libpq's protocol trace (round
trips: BEGIN/COMMIT and pool pings included). Targets: 1 for hot paths, ≤ 2 for approval.
"""

from __future__ import annotations

from typing import Any

from genjobs.db import record_statements

from bench.common import BenchServer, Report, quiet_stdout
from bench.harness import (
    RoundTripTracer,
    call,
    handler_modules,
    is_missing,
    layer_database,
    outcome,
    succeeded,
)
from bench.scenarios import OPERATIONS, Operation, SetupFailed, World
from tests.support.database import set_database


def _first_words(statement: str) -> str:
    flat = " ".join(statement.split())
    return flat if len(flat) <= 110 else flat[:107] + "..."


def _verdict(response: dict[str, Any], target: int | None, statements: int, trips: object) -> str:
    if not succeeded(response):
        return "answer?"
    if target is None:
        return ""
    if statements <= target and isinstance(trips, int) and trips <= target:
        return "ok"
    return "**MISS**"


def _measure(op: Operation, world: World, module: Any, tracer: RoundTripTracer) -> tuple[list[object], list[str]]:
    """The table row of one operation and the statements it sent (none when it is missing)."""
    target = "—" if op.target is None else ("1" if op.target == 1 else f"≤ {op.target}")
    try:
        with quiet_stdout():
            warm = call(module, op.prepare(world))
            if is_missing(warm):
                return [op.function, op.name, "missing", "missing", "missing", target, "missing"], []
            event = op.prepare(world)
            with record_statements() as recorder:
                tracer.start()
                response = call(module, event)
                trips = tracer.stop()
    except SetupFailed as exc:
        return [op.function, op.name, f"missing ({exc})", "—", "—", target, "missing"], []
    statements = recorder.count
    trips_cell: object = trips if trips or not statements else "?"
    row: list[object] = [op.function, op.name + (f" ({op.note})" if op.note else ""), outcome(response), statements,
                         trips_cell, target, _verdict(response, op.target, statements, trips_cell)]
    return row, list(recorder.statements)


def run(report: Report, server: BenchServer) -> dict[str, int]:
    """Print the table; return {operation: statements} of the measured requests (missing ones left out)."""
    report.heading("Round trips per warm request")
    url = server.new_database("roundtrips")
    db = layer_database(url)
    previous = set_database(db)
    measured: dict[str, int] = {}
    details: list[tuple[str, list[str]]] = []
    tracer: RoundTripTracer | None = None
    try:
        with quiet_stdout():
            modules = handler_modules()
            world = World(db, modules)
            call(modules["progress"], world.http("GET", "/health"))  # the container is warm: pool open
        tracer = RoundTripTracer(db)
        rows: list[list[object]] = []
        for op in OPERATIONS:
            row, statements = _measure(op, world, modules[op.function], tracer)
            rows.append(row)
            if row[-1] != "missing":
                measured[op.name] = len(statements)
            if len(statements) > 1:
                details.append((op.name, [_first_words(s) for s in statements]))
        report.table(["function", "operation", "answer", "statements", "round trips", "target", ""], rows)
        report.say("")
        report.say(f"{len(measured)} operations measured, {len(OPERATIONS) - len(measured)} missing.")
        if details:
            report.say("")
            report.say("Operations with more than one statement:")
            for name, texts in details:
                report.say(f"- {name}:")
                for i, text in enumerate(texts, 1):
                    report.say(f"  {i}. `{text}`")
    finally:
        if tracer is not None:
            tracer.close()
        set_database(previous)
        db.close()
        server.drop(url)
    return measured
