"""Part 2 — warm overhead: each hot handler vs raw psycopg running the same SQL, interleaved.

Three variants of one request, in a shuffled order on every iteration, on the same database:

* handler — `lambda_handler(event, context)` in-process with an API Gateway v2 event (powertools routing and
  validation, the service, the layer's pool and helpers, pydantic models, JSON);
* service — the genjobs service function the handler calls (no event, no HTTP);
* raw — the statements the handler sent (captured once, with their parameters; SQL composed with psycopg.sql
  rendered to a string once, as a hand-written query would be) through one plain psycopg connection
  (autocommit, prepare_threshold=None), rows as tuples.

Each variant has its own connection (the handler and the service share the layer's one-connection pool).
POST /personas/{id}/generations needs a fresh persona per call (one active job per persona): personas are
made beforehand for all three variants, spread over many merchants with a high hourly limit.
"""

from __future__ import annotations

import copy
import random
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any
from uuid import UUID

from genjobs.db import Database
from genjobs.ports import utc_now

from bench.common import (
    BenchServer,
    Report,
    connect_raw,
    fmt_ratio,
    median,
    percentile,
    quiet_stdout,
    ratio,
)
from bench.harness import (
    Captured,
    call,
    capture,
    handler_modules,
    is_missing,
    layer_database,
    outcome,
    succeeded,
)
from bench.scenarios import World
from tests.support.database import set_database

TARGET = 1.5
WARMUP = 100
MAX_ITERATIONS = 2000
TIME_LIMIT_SECONDS = 20.0
VARIANTS = ("handler", "service", "raw")


def substitute(value: Any, exact: dict[Any, Any], shift: timedelta) -> Any:
    """`value` with ids swapped (exact matches) and timestamps moved by `shift`."""
    if isinstance(value, dict):
        return {k: substitute(v, exact, shift) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return type(value)(substitute(v, exact, shift) for v in value)
    if isinstance(value, datetime):
        return value + shift
    if isinstance(value, UUID | str) and value in exact:
        return exact[value]
    return value


@dataclass
class Inputs:
    """Everything one iteration needs, built before the clock starts."""

    event: dict[str, Any]
    service: Callable[[], Any]
    raw: list[Captured]


@dataclass
class Case:
    name: str
    function: str
    inputs: Callable[[int], Inputs]
    timings: dict[str, list[float]] = field(default_factory=lambda: {v: [] for v in VARIANTS})
    missing: str | None = None


def _calibrate(db_capturing: Database, module: Any, event: dict[str, Any]) -> tuple[list[Captured], dict[str, Any]]:
    """The statements one handler call sends, with their parameters and their SQL rendered to strings."""
    previous = set_database(db_capturing)
    try:
        with capture() as found:
            response = call(module, copy.deepcopy(event))
    finally:
        set_database(previous)
    return [c.rendered() for c in found], response


def _run_raw(conn: Any, statements: list[Captured]) -> None:
    for statement in statements:
        cur = conn.execute(statement.query, statement.params)
        if cur.description is not None:
            cur.fetchall()


def _same_inputs(event: dict[str, Any], service: Callable[[], Any], raw: list[Captured]) -> Callable[[int], Inputs]:
    """Every iteration reads the same thing: a fresh copy of the event, the same service call and SQL."""
    return lambda i: Inputs(copy.deepcopy(event), service, raw)


def _cases(world: World, db: Database, capturing: Database, modules: dict[str, Any], iterations: int) -> list[Case]:
    from genjobs import dependencies
    from genjobs.services import jobs, limits

    cases: list[Case] = []
    merchant = world.merchant

    # GET /jobs/{job_id}
    job_id = world.queued_job()
    event = world.http("GET", f"/jobs/{job_id}", route="/jobs/{job_id}", params={"job_id": str(job_id)})
    captured, response = _calibrate(capturing, modules["progress"], event)
    case = Case("GET /jobs/{job_id}", "progress", lambda i: Inputs(event, lambda: None, captured))
    if is_missing(response) or not succeeded(response):
        case.missing = "missing"
    else:
        def read_job() -> Any:
            return jobs.get_job(db, merchant, job_id)

        case.inputs = lambda i: Inputs(copy.deepcopy(event), read_job, captured)
    cases.append(case)

    # GET /jobs?limit=20 (a page of 20 of the merchant's jobs) and GET /personas/{persona_id}
    from genjobs.services import personas as persona_service

    for _ in range(20):
        world.queued_job()
    persona = world.persona()
    reads = (
        ("GET /jobs?limit=20", "progress", world.http("GET", "/jobs", query={"limit": "20"}),
         lambda: jobs.list_jobs(db, merchant, limit=20, cursor_keys=dependencies.get().cursor_keys())),
        ("GET /personas/{persona_id}", "generation",
         world.http("GET", f"/personas/{persona}", route="/personas/{persona_id}",
                    params={"persona_id": str(persona)}),
         lambda: persona_service.get_persona(db, merchant, persona, cooldown=world.limits.cooldown, clock=utc_now)),
    )
    for name, function, read_event, read_service in reads:
        read_captured, response = _calibrate(capturing, modules[function], read_event)
        case = Case(name, function, _same_inputs(read_event, read_service, read_captured))
        if is_missing(response) or not succeeded(response):
            case.missing = "missing" if is_missing(response) else f"failed: {outcome(response)}"
        cases.append(case)

    # GET /usage
    usage_event = world.http("GET", "/usage")
    usage_captured, response = _calibrate(capturing, modules["limits"], usage_event)
    limit = world.limits.default_hourly_limit

    def read_usage() -> Any:
        return limits.get_usage(db, merchant, default_hourly_limit=limit, clock=utc_now)

    case = Case("GET /usage", "limits", lambda i: Inputs(copy.deepcopy(usage_event), read_usage, usage_captured))
    if not succeeded(response):
        case.missing = "missing"
    cases.append(case)

    # POST /personas/{persona_id}/generations: a fresh persona for every call of every variant
    merchants = 300
    rows = db.fetch_all(
        """
        WITH m AS (
            INSERT INTO merchants (id, hourly_generation_limit)
            SELECT 'ovh-' || k, 100000000 FROM generate_series(0, %(merchants)s - 1) AS k
            ON CONFLICT (id) DO NOTHING
        )
        INSERT INTO personas (merchant_id, name, description, product_name, character_type)
        SELECT 'ovh-' || (n %% %(merchants)s), 'Pip ' || n, 'A cheerful robot', 'SnackBot', 'robot'
          FROM generate_series(0, %(count)s - 1) AS n
        RETURNING id, merchant_id
        """,
        {"merchants": merchants, "count": 3 * iterations + 3},
    )
    personas = [(UUID(str(r["id"])), str(r["merchant_id"])) for r in rows]
    calibration_persona, calibration_merchant = personas.pop()
    body = {"variation_count": 3}

    def start_event(persona: UUID, merchant_id: str) -> dict[str, Any]:
        return world.http("POST", f"/personas/{persona}/generations", route="/personas/{persona_id}/generations",
                          params={"persona_id": str(persona)}, body=body, merchant=merchant_id)

    captured_at = datetime.now(UTC)
    start_captured, response = _calibrate(capturing, modules["generation"],
                                          start_event(calibration_persona, calibration_merchant))

    def start_inputs(i: int) -> Inputs:
        (hp, hm), (sp, sm), (rp, rm) = personas[3 * i], personas[3 * i + 1], personas[3 * i + 2]

        def start() -> Any:
            return jobs.start_job(
                db, world.invoker, merchant_id=sm, persona_id=sp, job_type="character_variations", body=body,
                variation_count=3, states=None, prompt_variables={}, idempotency_key=None, limits=world.limits,
                clock=utc_now, worker_function="genjobs-generation")

        exact: dict[Any, Any] = {calibration_persona: rp, calibration_merchant: rm}
        shift = datetime.now(UTC) - captured_at
        raw = [Captured(c.query, substitute(c.params, exact, shift)) for c in start_captured]
        return Inputs(start_event(hp, hm), start, raw)

    case = Case("POST /personas/{persona_id}/generations", "generation", start_inputs)
    if not succeeded(response):
        case.missing = "missing"
    cases.append(case)
    return cases


def _measure(case: Case, module: Any, raw_conn: Any, iterations: int, rng: random.Random) -> None:
    deadline = time.monotonic() + TIME_LIMIT_SECONDS
    for i in range(iterations):
        inputs = case.inputs(i)
        order = list(VARIANTS)
        rng.shuffle(order)
        for variant in order:
            started = time.perf_counter()
            if variant == "handler":
                response = call(module, inputs.event)
            elif variant == "service":
                inputs.service()
            else:
                _run_raw(raw_conn, inputs.raw)
            elapsed_us = (time.perf_counter() - started) * 1e6
            if variant == "handler" and not succeeded(response):
                raise RuntimeError(f"{case.name} answered {response.get('statusCode')}: {response.get('body')}")
            if i >= WARMUP:
                case.timings[variant].append(elapsed_us)
        if time.monotonic() > deadline and i >= WARMUP + 200:
            break


def run(report: Report, server: BenchServer) -> None:
    report.heading("Warm overhead: handler vs service vs raw psycopg (same SQL), interleaved")
    url = server.new_database("overhead")
    db = layer_database(url)
    capturing = layer_database(url, capturing=True)
    previous = set_database(db)
    raw_conn = connect_raw(url)
    rng = random.Random(8)
    try:
        with quiet_stdout():
            modules = handler_modules()
            world = World(db, modules)
            cases = _cases(world, db, capturing, modules, WARMUP + MAX_ITERATIONS)
        rows: list[list[object]] = []
        verdicts: list[str] = []
        for case in cases:
            if case.missing:
                rows.append([case.name, "—", case.missing, "", "", "", ""])
                continue
            report.note(f"overhead: {case.name}")
            with quiet_stdout():
                _measure(case, modules[case.function], raw_conn, WARMUP + MAX_ITERATIONS, rng)
            raw_med, raw_p99 = median(case.timings["raw"]), percentile(case.timings["raw"], 99)
            for variant in VARIANTS:
                values = case.timings[variant]
                med, p99 = median(values), percentile(values, 99)
                rows.append([case.name if variant == "handler" else "", variant, len(values), f"{med:.0f}",
                             f"{p99:.0f}", fmt_ratio(ratio(med, raw_med)), fmt_ratio(ratio(p99, raw_p99))])
            handler_med = median(case.timings["handler"])
            service_med = median(case.timings["service"])
            r = ratio(handler_med, raw_med)
            verdicts.append(
                f"- {case.name}: handler/raw {r:.2f}x at the median (target ≤ {TARGET}x: "
                f"{'ok' if r <= TARGET else '**MISS**'}); the handler adds {handler_med - raw_med:.0f} µs to the "
                f"SQL's {raw_med:.0f} µs: {service_med - raw_med:.0f} µs in the layer (pool checkout, helpers, "
                f"rows as dicts, models), {handler_med - service_med:.0f} µs in the handler (event, routing, "
                f"validation, JSON, logging context)")
        report.table(["operation", "variant", "n", "median µs", "p99 µs", "x raw (median)", "x raw (p99)"], rows)
        report.say("")
        for line in verdicts:
            report.say(line)
    finally:
        raw_conn.close()
        set_database(previous)
        db.close()
        capturing.close()
        server.drop(url)
