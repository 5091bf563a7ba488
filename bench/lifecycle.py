"""Part 3 — lifecycle throughput: 8 processes, each like a warm Lambda container with one connection.

Variants, on the same database in the same run, in interleaved rounds (every variant runs ROUNDS times
for ROUND_SECONDS, in a rotating order, so drift of this noisy machine spreads over all of them):

* genjobs — the services: `jobs.start_job` (all limit checks and the insert, one statement), then
  `worker.run_job` with an instant image model and an in-memory store: claim, 3 progress updates (one per
  generated variation: media output + variation + progress + lease), complete (persona + ledger): 6
  statements per job, each in its own autocommit transaction, with the database's triggers (timeline,
  NOTIFY, transition rules);
* raw — the same 6 statements (captured from a genjobs job, with ids and timestamps swapped) through plain
  psycopg: the database's floor for this workload;
* pgqueuer — `Queries.enqueue` → `dequeue` → `log_jobs(successful)`;
* procrastinate — `defer_async` → `JobManager.fetch_job` → `finish_job(succeeded)`.

The queue libraries do less per job (no progress updates, outputs or ledger): they are the yardstick for
"a PostgreSQL job queue on this machine", not the same work.
"""

from __future__ import annotations

import asyncio
import contextlib
import multiprocessing as mp
import time
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from multiprocessing.connection import Connection
from typing import Any
from uuid import UUID

from bench.common import BenchServer, Report, apply_env, median

PROCESSES = 8
ROUNDS = 8
ROUND_SECONDS = 2.5
MERCHANTS_PER_PROCESS = 100
VARIANTS = ("genjobs", "raw", "pgqueuer", "procrastinate")
STATEMENTS = {"genjobs": "6", "raw": "6", "pgqueuer": "3", "procrastinate": "3"}


@dataclass
class Plan:
    """The statements of one genjobs lifecycle, captured with their parameters, for the raw variant."""

    statements: list[tuple[Any, Any]]
    persona: UUID
    merchant: str
    job: UUID
    captured_at: datetime


# -- runners (in the worker processes) ---------------------------------------------------------------------


def _personas(url: str, prefix: str) -> list[tuple[str, UUID]]:
    import psycopg

    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute(
            "INSERT INTO merchants (id, hourly_generation_limit) "
            "SELECT %s || k, 100000000 FROM generate_series(0, %s - 1) AS k ON CONFLICT (id) DO NOTHING",
            (prefix, MERCHANTS_PER_PROCESS))
        rows = conn.execute(
            "INSERT INTO personas (merchant_id, name, description, product_name, character_type) "
            "SELECT %s || k, 'Pip ' || k, 'A cheerful robot', 'SnackBot', 'robot' "
            "FROM generate_series(0, %s - 1) AS k RETURNING merchant_id, id",
            (prefix, MERCHANTS_PER_PROCESS)).fetchall()
    return [(str(m), UUID(str(p))) for m, p in rows]


class GenjobsRunner:
    def __init__(self, url: str, index: int) -> None:
        from genjobs.db import Database, DatabaseSettings
        from genjobs.services import jobs, worker

        from bench.harness import FastProvider, MemoryStore, NoopInvoker

        self.jobs, self.worker = jobs, worker
        self.db = Database(DatabaseSettings(url=url, pool_min_size=1, pool_max_size=1))
        self.invoker, self.provider, self.store = NoopInvoker(), FastProvider(), MemoryStore()
        self.limits = jobs.LimitSettings(default_hourly_limit=100_000_000, cooldown=timedelta(0),
                                               max_retries=3)
        self.settings = worker.WorkerSettings()
        self.personas = _personas(url, f"lc-g{index}-{uuid.uuid4().hex[:6]}-")
        self.turn = 0

    def one(self) -> bool:
        from genjobs.ports import utc_now

        merchant, persona = self.personas[self.turn % len(self.personas)]
        self.turn += 1
        started = self.jobs.start_job(
            self.db, self.invoker, merchant_id=merchant, persona_id=persona, job_type="character_variations",
            body={"variation_count": 3}, variation_count=3, states=None, prompt_variables={}, idempotency_key=None,
            limits=self.limits, clock=utc_now, worker_function="genjobs-generation")
        outcome = self.worker.run_job(self.db, self.provider, self.store, started.job.id, settings=self.settings,
                                      clock=utc_now)
        return outcome.status == "completed"

    def close(self) -> None:
        self.db.close()


def _swap(value: Any, exact: dict[Any, Any], text: dict[str, str], shift: timedelta) -> Any:
    if isinstance(value, dict):
        return {k: _swap(v, exact, text, shift) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return type(value)(_swap(v, exact, text, shift) for v in value)
    if isinstance(value, datetime):
        return value + shift
    if isinstance(value, UUID | str) and value in exact:
        return exact[value]
    if isinstance(value, str):
        for old, new in text.items():
            value = value.replace(old, new)
    return value


class RawRunner:
    def __init__(self, url: str, index: int, plan: Plan) -> None:
        import psycopg

        self.conn = psycopg.connect(url, autocommit=True, prepare_threshold=None)
        self.plan = plan
        self.personas = _personas(url, f"lc-r{index}-{uuid.uuid4().hex[:6]}-")
        self.turn = 0

    def one(self) -> bool:
        merchant, persona = self.personas[self.turn % len(self.personas)]
        self.turn += 1
        plan = self.plan
        shift = datetime.now(UTC) - plan.captured_at
        first_query, first_params = plan.statements[0]
        row = self.conn.execute(first_query, _swap(first_params, {plan.persona: persona, plan.merchant: merchant},
                                                   {}, shift)).fetchone()
        if row is None or row[0].get("outcome") != "created":
            return False
        job = UUID(str(row[0]["job"]["id"]))
        exact: dict[Any, Any] = {plan.persona: persona, plan.merchant: merchant, plan.job: job}
        text = {str(plan.job): str(job)}
        ok = True
        for query, params in plan.statements[1:]:
            cur = self.conn.execute(query, _swap(params, exact, text, shift))
            rows = cur.fetchall() if cur.description is not None else [()]
            ok = ok and bool(rows)
        return ok

    def close(self) -> None:
        self.conn.close()


class PgqueuerRunner:
    def __init__(self, url: str, index: int) -> None:
        self.loop = asyncio.new_event_loop()
        self.url = url
        self.entrypoint = f"bench_{index}_{uuid.uuid4().hex[:6]}"
        self.loop.run_until_complete(self._open())

    async def _open(self) -> None:
        import psycopg
        from pgqueuer.queries import EntrypointExecutionParameter, Queries

        self.conn = await psycopg.AsyncConnection.connect(self.url, autocommit=True)
        self.queries = Queries.from_psycopg_connection(self.conn)
        self.entrypoints = {self.entrypoint: EntrypointExecutionParameter(concurrency_limit=0)}
        self.manager_id = uuid.uuid4()

    async def _one(self) -> bool:
        await self.queries.enqueue(self.entrypoint, b"{}")
        jobs = await self.queries.dequeue(batch_size=1, entrypoints=self.entrypoints,
                                          queue_manager_id=self.manager_id, global_concurrency_limit=None,
                                          heartbeat_timeout=timedelta(seconds=30))
        if not jobs:
            return False
        await self.queries.log_jobs([(job, "successful", None) for job in jobs])
        return True

    def one(self) -> bool:
        return self.loop.run_until_complete(self._one())

    def run_until(self, deadline: float) -> tuple[int, int]:
        async def loop() -> tuple[int, int]:
            done = errors = 0
            while time.monotonic() < deadline:
                if await self._one():
                    done += 1
                else:
                    errors += 1
            return done, errors

        return self.loop.run_until_complete(loop())

    def close(self) -> None:
        self.loop.run_until_complete(self.conn.close())
        self.loop.close()


class ProcrastinateRunner:
    def __init__(self, url: str, index: int) -> None:
        self.loop = asyncio.new_event_loop()
        self.url = url
        self.queue = f"bench_{index}_{uuid.uuid4().hex[:6]}"
        self.loop.run_until_complete(self._open())

    async def _open(self) -> None:
        import procrastinate

        self.app = procrastinate.App(connector=procrastinate.PsycopgConnector(conninfo=self.url, min_size=1,
                                                                              max_size=1))
        await self.app.open_async()

        @self.app.task(name="bench", queue=self.queue)
        def bench_task() -> None:
            return None

        self.task = bench_task
        self.worker_id = await self.app.job_manager.register_worker()
        self.succeeded = procrastinate.jobs.Status.SUCCEEDED

    async def _one(self) -> bool:
        await self.task.defer_async()
        job = await self.app.job_manager.fetch_job(queues=[self.queue], worker_id=self.worker_id)
        if job is None:
            return False
        await self.app.job_manager.finish_job(job, self.succeeded, delete_job=False)
        return True

    def run_until(self, deadline: float) -> tuple[int, int]:
        async def loop() -> tuple[int, int]:
            done = errors = 0
            while time.monotonic() < deadline:
                if await self._one():
                    done += 1
                else:
                    errors += 1
            return done, errors

        return self.loop.run_until_complete(loop())

    def close(self) -> None:
        with contextlib.suppress(Exception):
            self.loop.run_until_complete(self.app.job_manager.unregister_worker(self.worker_id))
        self.loop.run_until_complete(self.app.close_async())
        self.loop.close()


def _run_sync(runner: GenjobsRunner | RawRunner, deadline: float) -> tuple[int, int]:
    done = errors = 0
    while time.monotonic() < deadline:
        if runner.one():
            done += 1
        else:
            errors += 1
    return done, errors


def worker_main(variant: str, index: int, url: str, plan: Plan | None, pipe: Connection) -> None:
    """One process: set up, say ready, then run rounds on command until told to stop."""
    import warnings

    apply_env(url)
    warnings.filterwarnings("ignore")
    runner: Any
    try:
        if variant == "genjobs":
            runner = GenjobsRunner(url, index)
        elif variant == "raw":
            assert plan is not None
            runner = RawRunner(url, index, plan)
        elif variant == "pgqueuer":
            runner = PgqueuerRunner(url, index)
        else:
            runner = ProcrastinateRunner(url, index)
    except Exception as exc:
        pipe.send(("error", f"{type(exc).__name__}: {exc}"))
        return
    pipe.send(("ready", None))
    while True:
        command = pipe.recv()
        if command[0] == "stop":
            break
        _, start_at, seconds = command
        while time.monotonic() < start_at:
            time.sleep(min(0.01, max(0.0, start_at - time.monotonic())))
        try:
            if variant in ("genjobs", "raw"):
                done, errors = _run_sync(runner, start_at + seconds)
            else:
                done, errors = runner.run_until(start_at + seconds)
            pipe.send(("done", (done, errors, time.monotonic() - start_at)))
        except Exception as exc:
            pipe.send(("error", f"{type(exc).__name__}: {exc}"))
    with contextlib.suppress(Exception):
        runner.close()


# -- the parent ---------------------------------------------------------------------------------------------


def _capture_plan(url: str) -> Plan:
    """Run one genjobs lifecycle through a capturing database and keep its statements."""
    from genjobs.ports import utc_now
    from genjobs.services import jobs, worker

    from bench.harness import FastProvider, MemoryStore, NoopInvoker, capture, layer_database

    db = layer_database(url, capturing=True)
    try:
        merchant = "lc-calibration"
        db.execute("INSERT INTO merchants (id, hourly_generation_limit) VALUES (%s, 100000000)", (merchant,))
        persona = UUID(str(db.fetch_value(
            "INSERT INTO personas (merchant_id, name) VALUES (%s, 'Calibration') RETURNING id", (merchant,))))
        captured_at = datetime.now(UTC)
        limits = jobs.LimitSettings(default_hourly_limit=100_000_000, cooldown=timedelta(0), max_retries=3)
        with capture() as found:
            started = jobs.start_job(
                db, NoopInvoker(), merchant_id=merchant, persona_id=persona, job_type="character_variations",
                body={"variation_count": 3}, variation_count=3, states=None, prompt_variables={},
                idempotency_key=None, limits=limits, clock=utc_now, worker_function="genjobs-generation")
            outcome = worker.run_job(db, FastProvider(), MemoryStore(), started.job.id,
                                     settings=worker.WorkerSettings(), clock=utc_now)
        if outcome.status != "completed" or len(found) != 6:
            raise RuntimeError(f"calibration lifecycle: {outcome.status}, {len(found)} statements (expected 6)")
        return Plan([(c.text, c.params) for c in found], persona, merchant, started.job.id, captured_at)
    finally:
        db.close()


def _install_queues(url: str) -> None:
    async def install() -> None:
        import procrastinate
        import psycopg
        from pgqueuer.queries import Queries

        async with await psycopg.AsyncConnection.connect(url, autocommit=True) as conn:
            await Queries.from_psycopg_connection(conn).install()
        app = procrastinate.App(connector=procrastinate.PsycopgConnector(conninfo=url))
        async with app.open_async():
            await app.schema_manager.apply_schema_async()

    asyncio.run(install())


@dataclass
class Worker:
    variant: str
    process: Any
    pipe: Connection


def _start_workers(url: str, plan: Plan) -> list[Worker]:
    ctx = mp.get_context("spawn")
    workers: list[Worker] = []
    for variant in VARIANTS:
        for index in range(PROCESSES):
            parent, child = ctx.Pipe()
            process = ctx.Process(target=worker_main, args=(variant, index, url, plan, child), daemon=True)
            process.start()
            workers.append(Worker(variant, process, parent))
    return workers


def _stop_workers(workers: list[Worker]) -> None:
    for w in workers:
        with contextlib.suppress(Exception):
            w.pipe.send(("stop",))
    for w in workers:
        w.process.join(timeout=10)
        if w.process.is_alive():
            w.process.terminate()


def _round(workers: list[Worker], variant: str) -> tuple[int, int, float]:
    """One round of one variant: (jobs done, errors, seconds of the slowest process)."""
    group = [w for w in workers if w.variant == variant]
    start_at = time.monotonic() + 0.2
    for w in group:
        w.pipe.send(("run", start_at, ROUND_SECONDS))
    done = errors = 0
    longest = ROUND_SECONDS
    for w in group:
        kind, detail = w.pipe.recv()
        if kind != "done":
            raise RuntimeError(f"{variant} worker failed: {detail}")
        done, errors = done + detail[0], errors + detail[1]
        longest = max(longest, detail[2])
    return done, errors, longest


def run(report: Report, server: BenchServer) -> None:
    report.heading(f"Lifecycle throughput: {PROCESSES} processes x 1 connection, {ROUNDS} interleaved rounds of "
                   f"{ROUND_SECONDS:.1f} s per variant")
    url = server.new_database("lifecycle")
    workers: list[Worker] = []
    try:
        _install_queues(url)
        plan = _capture_plan(url)
        report.note(f"lifecycle: starting {PROCESSES * len(VARIANTS)} worker processes")
        workers = _start_workers(url, plan)
        for w in workers:
            kind, detail = w.pipe.recv()
            if kind != "ready":
                raise RuntimeError(f"{w.variant} worker failed to start: {detail}")
        per_round: dict[str, list[float]] = {v: [] for v in VARIANTS}
        totals: dict[str, list[int]] = {v: [0, 0] for v in VARIANTS}
        for round_no in range(ROUNDS):
            shift = round_no % len(VARIANTS)
            for variant in VARIANTS[shift:] + VARIANTS[:shift]:
                done, errors, seconds = _round(workers, variant)
                per_round[variant].append(done / seconds)
                totals[variant][0] += done
                totals[variant][1] += errors
            report.note(f"lifecycle: round {round_no + 1}/{ROUNDS}: "
                        + ", ".join(f"{v} {per_round[v][-1]:.0f}/s" for v in VARIANTS))
        base = median(per_round["genjobs"])
        rows = []
        for variant in VARIANTS:
            rates = per_round[variant]
            med = median(rates)
            rows.append([variant, STATEMENTS[variant], f"{med:.0f}", f"{min(rates):.0f}-{max(rates):.0f}",
                         totals[variant][0], totals[variant][1], f"{med / base:.2f}x",
                         f"{med * int(STATEMENTS[variant]):.0f}"])
        report.table(["variant", "statements/job", "jobs/s (median of rounds)", "range", "jobs", "errors",
                      "x genjobs", "statements/s"], rows)
        raw_med = median(per_round["raw"])
        report.say("")
        report.say(f"genjobs runs at {base / raw_med:.2f}x the raw-SQL rate of the same statements "
                   f"({base:.0f} vs {raw_med:.0f} jobs/s); one genjobs job is 6 commits (start, claim, 3 progress "
                   "updates, complete) against 3 for the queues' enqueue -> dequeue -> complete.")
    finally:
        _stop_workers(workers)
        server.drop(url)
