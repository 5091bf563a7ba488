"""Part 3 — lifecycle throughput: 8 processes, each like a warm Lambda container with one connection.

Variants, on the same database in the same run, in interleaved rounds (every variant runs ROUNDS times
for ROUND_SECONDS, in a rotating order, so drift of this noisy machine spreads over all of them):

* genjobs — the services: `jobs.start_job` (all limit checks and the insert, one statement), then
  `worker.run_job` with an instant image model and an in-memory store: claim, 3 progress updates (one per
  generated variation: media output + variation + progress + lease), complete (persona + ledger): 6
  statements per job, each in its own autocommit transaction, with the database's triggers (timeline,
  transition rules);
* genjobs 3-step — the same work as the queues: `jobs.start_job` → claim → complete (no images; the ledger
  entry is charged at a cost of 0), the three state changes as the database functions the worker calls;
* genjobs pre-070 and genjobs 3-step pre-070 — the same code on a second database migrated only up to
  069 (the schema before issue 18: the NOTIFY in the timeline trigger, the lease index, fillfactor 100), so
  every run compares against today's main on this machine;
* raw — the same 6 statements (captured from a genjobs job, with ids and timestamps swapped) through plain
  psycopg: the database's floor for this workload;
* pgqueuer — `Queries.enqueue` → `dequeue` → `log_jobs(successful)`;
* procrastinate — `defer_async` → `JobManager.fetch_job` → `finish_job(succeeded)`.

The queue libraries do less per job than the 6-statement lifecycle (no progress updates, outputs or ledger):
they are the yardstick for "a PostgreSQL job queue on this machine"; the 3-step variant is the same work.

Around every round the parent reads the server's cost of it: CPU (utime + stime of every server process in
pg_stat_activity, from /proc: only when the server runs on this machine), WAL bytes (pg_stat_wal.wal_bytes;
each worker forces its statistics out with pg_stat_force_next_flush() at the end of a round) and the share of
UPDATEs that were HOT (pg_stat_user_tables.n_tup_hot_upd / n_tup_upd over every table of the variant's
database); per job, summed over the rounds.
"""

from __future__ import annotations

import asyncio
import contextlib
import multiprocessing as mp
import os
import time
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from multiprocessing.connection import Connection
from pathlib import Path
from typing import Any
from uuid import UUID

from bench.common import BenchServer, Report, apply_env, median

PROCESSES = 8
ROUNDS = 8
ROUND_SECONDS = 2.5
MERCHANTS_PER_PROCESS = 100
VARIANTS = ("genjobs", "genjobs pre-070", "raw", "genjobs 3-step", "genjobs 3-step pre-070", "pgqueuer",
            "procrastinate")
STATEMENTS = {"genjobs": "6", "genjobs pre-070": "6", "raw": "6", "genjobs 3-step": "3",
              "genjobs 3-step pre-070": "3", "pgqueuer": "3", "procrastinate": "3"}
# The variants that run on the database migrated only up to this version (the schema before issue 18).
BEFORE_VERSION = 70
ON_BEFORE = {"genjobs pre-070", "genjobs 3-step pre-070"}
# Issue 18's targets, as ratios of medians in the same run.
TARGETS = (("genjobs 3-step", "pgqueuer", 1.0), ("genjobs 3-step", "procrastinate", 1.2),
           ("genjobs", "genjobs pre-070", 1.7))
FLUSH_STATS = "SELECT pg_stat_force_next_flush()"


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
    def __init__(self, url: str, index: int, *, same_work: bool = False) -> None:
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
        self.same_work = same_work

    def one(self) -> bool:
        from genjobs.data import jobs as job_data
        from genjobs.ports import utc_now

        merchant, persona = self.personas[self.turn % len(self.personas)]
        self.turn += 1
        started = self.jobs.start_job(
            self.db, self.invoker, merchant_id=merchant, persona_id=persona, job_type="character_variations",
            body={"variation_count": 3}, variation_count=3, states=None, prompt_variables={}, idempotency_key=None,
            limits=self.limits, clock=utc_now, worker_function="genjobs-generation")
        if self.same_work:  # start -> claim -> complete: the queues' enqueue -> dequeue -> finish
            claim = job_data.claim_job(self.db, started.job.id, utc_now(), self.settings.lease)
            if claim is None:
                return False
            answer = job_data.complete_job(self.db, job_id=started.job.id, attempt=claim.attempt,
                                           expected=("processing",), now=utc_now())
            return answer.outcome == "completed"
        outcome = self.worker.run_job(self.db, self.provider, self.store, started.job.id, settings=self.settings,
                                      clock=utc_now)
        return outcome.status == "completed"

    def flush_stats(self) -> None:
        self.db.execute(FLUSH_STATS)

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

    def flush_stats(self) -> None:
        self.conn.execute(FLUSH_STATS)

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

    def flush_stats(self) -> None:
        self.loop.run_until_complete(self.conn.execute(FLUSH_STATS))

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

    def flush_stats(self) -> None:
        self.loop.run_until_complete(self.app.connector.execute_query_async(FLUSH_STATS))

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
        if variant.startswith("genjobs"):
            runner = GenjobsRunner(url, index, same_work="3-step" in variant)
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
            if variant.startswith("genjobs") or variant == "raw":
                done, errors = _run_sync(runner, start_at + seconds)
            else:
                done, errors = runner.run_until(start_at + seconds)
            runner.flush_stats()  # this backend's table and WAL counters, out before the parent reads them
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


def _start_workers(urls: dict[str, str], plan: Plan) -> list[Worker]:
    ctx = mp.get_context("spawn")
    workers: list[Worker] = []
    for variant in VARIANTS:
        for index in range(PROCESSES):
            parent, child = ctx.Pipe()
            process = ctx.Process(target=worker_main, args=(variant, index, urls[variant], plan, child),
                                  daemon=True)
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


# -- what a round cost the server ----------------------------------------------------------------------------


@dataclass
class ServerCost:
    """Counters read before and after a round; the difference is the round's cost."""

    cpu_ticks: int | None
    wal_bytes: int
    updates: int
    hot_updates: int
    job_updates: int  # generation_jobs alone
    job_hot_updates: int


class ServerMeter:
    """Reads the server's CPU, WAL and update counters over one connection per database."""

    def __init__(self, urls: list[str]) -> None:
        import psycopg

        self.conns = [psycopg.connect(u, autocommit=True) for u in urls]
        self.tick = os.sysconf("SC_CLK_TCK") if hasattr(os, "sysconf") else 100
        # /proc of this machine shows the server's processes only when the server runs here
        pid = self.conns[0].execute("SELECT pg_backend_pid()").fetchone()
        self.local = pid is not None and Path(f"/proc/{pid[0]}/stat").exists()

    def _cpu_ticks(self) -> int | None:
        if not self.local:
            return None
        rows = self.conns[0].execute("SELECT pid FROM pg_stat_activity").fetchall()
        total = 0
        for (pid,) in rows:
            with contextlib.suppress(OSError, ValueError, IndexError):
                fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
                total += int(fields[11]) + int(fields[12])  # utime, stime (fields 14 and 15 of stat)
        return total

    def read(self) -> ServerCost:
        cpu = self._cpu_ticks()
        wal = self.conns[0].execute("SELECT wal_bytes FROM pg_stat_wal").fetchone()
        counts = [0, 0, 0, 0]
        for conn in self.conns:
            row = conn.execute(
                "SELECT coalesce(sum(n_tup_upd), 0), coalesce(sum(n_tup_hot_upd), 0), "
                "coalesce(sum(n_tup_upd) FILTER (WHERE relname = 'generation_jobs'), 0), "
                "coalesce(sum(n_tup_hot_upd) FILTER (WHERE relname = 'generation_jobs'), 0) "
                "FROM pg_stat_user_tables").fetchone()
            if row is not None:
                counts = [c + int(v) for c, v in zip(counts, row, strict=True)]
        return ServerCost(cpu, int(wal[0]) if wal else 0, *counts)

    def cpu_ms(self, before: ServerCost, after: ServerCost) -> float | None:
        if before.cpu_ticks is None or after.cpu_ticks is None:
            return None
        return (after.cpu_ticks - before.cpu_ticks) * 1000.0 / self.tick

    def close(self) -> None:
        for conn in self.conns:
            conn.close()


@dataclass
class Totals:
    jobs: int = 0
    errors: int = 0
    cpu_ms: float | None = 0.0
    wal_bytes: int = 0
    updates: int = 0
    hot_updates: int = 0
    job_updates: int = 0
    job_hot_updates: int = 0


def _share(hot: int, updates: int, jobs: int) -> str:
    return f"{100.0 * hot / updates:.0f} % of {updates / jobs:.1f}" if updates else "no updates"


def run(report: Report, server: BenchServer) -> None:
    report.heading(f"Lifecycle throughput: {PROCESSES} processes x 1 connection, {ROUNDS} interleaved rounds of "
                   f"{ROUND_SECONDS:.1f} s per variant")
    url = server.new_database("lifecycle")
    before_url = server.new_database("lifecycle_pre070", before_version=BEFORE_VERSION)
    urls = {v: before_url if v in ON_BEFORE else url for v in VARIANTS}
    workers: list[Worker] = []
    meter: ServerMeter | None = None
    try:
        _install_queues(url)
        plan = _capture_plan(url)
        report.note(f"lifecycle: starting {PROCESSES * len(VARIANTS)} worker processes")
        workers = _start_workers(urls, plan)
        for w in workers:
            kind, detail = w.pipe.recv()
            if kind != "ready":
                raise RuntimeError(f"{w.variant} worker failed to start: {detail}")
        meter = ServerMeter([url, before_url])
        per_round: dict[str, list[float]] = {v: [] for v in VARIANTS}
        totals: dict[str, Totals] = {v: Totals() for v in VARIANTS}
        for round_no in range(ROUNDS):
            shift = round_no % len(VARIANTS)
            for variant in VARIANTS[shift:] + VARIANTS[:shift]:
                before = meter.read()
                done, errors, seconds = _round(workers, variant)
                after = meter.read()
                per_round[variant].append(done / seconds)
                t = totals[variant]
                t.jobs, t.errors = t.jobs + done, t.errors + errors
                cpu = meter.cpu_ms(before, after)
                t.cpu_ms = None if cpu is None or t.cpu_ms is None else t.cpu_ms + cpu
                t.wal_bytes += after.wal_bytes - before.wal_bytes
                t.updates += after.updates - before.updates
                t.hot_updates += after.hot_updates - before.hot_updates
                t.job_updates += after.job_updates - before.job_updates
                t.job_hot_updates += after.job_hot_updates - before.job_hot_updates
            report.note(f"lifecycle: round {round_no + 1}/{ROUNDS}: "
                        + ", ".join(f"{v} {per_round[v][-1]:.0f}/s" for v in VARIANTS))
        medians = {v: median(per_round[v]) for v in VARIANTS}
        base = medians["genjobs"]
        rows = []
        for variant in VARIANTS:
            rates, t = per_round[variant], totals[variant]
            jobs = max(t.jobs, 1)
            rows.append([variant, STATEMENTS[variant], f"{medians[variant]:.0f}",
                         f"{min(rates):.0f}-{max(rates):.0f}", t.jobs, t.errors, f"{medians[variant] / base:.2f}x",
                         f"{medians[variant] * int(STATEMENTS[variant]):.0f}",
                         "—" if t.cpu_ms is None else f"{t.cpu_ms / jobs:.2f}",
                         f"{t.wal_bytes / jobs / 1024:.1f}", _share(t.hot_updates, t.updates, jobs),
                         _share(t.job_hot_updates, t.job_updates, jobs) if variant.startswith("genjobs")
                         or variant == "raw" else "—"])
        report.table(["variant", "statements/job", "jobs/s (median of rounds)", "range", "jobs", "errors",
                      "x genjobs", "statements/s", "server CPU ms/job", "WAL KiB/job", "HOT share of updates/job",
                      "generation_jobs: HOT share of updates/job"],
                     rows)
        report.say("")
        report.say(f"genjobs runs at {base / medians['raw']:.2f}x the raw-SQL rate of the same statements "
                   f"({base:.0f} vs {medians['raw']:.0f} jobs/s); one genjobs job is 6 commits (start, claim, 3 "
                   "progress updates, complete) against 3 for the queues' enqueue -> dequeue -> complete and for "
                   "genjobs 3-step (start -> claim -> complete). The pre-070 variants run the same code on a "
                   "database migrated up to 069 (before issue 18). Server CPU: every server process's utime + "
                   "stime (/proc) over the rounds, divided by the jobs; WAL: pg_stat_wal.wal_bytes; HOT: "
                   "pg_stat_user_tables over every table of the variant's database (since 070 that includes the "
                   "timeline row an image is folded into), and over generation_jobs alone.")
        for variant, other, target in TARGETS:
            r = medians[variant] / medians[other] if medians[other] else float("nan")
            report.say(f"- {variant} / {other}: {r:.2f}x (target ≥ {target:.1f}x: "
                       f"{'ok' if r >= target else '**MISS**'})")
    finally:
        if meter is not None:
            meter.close()
        _stop_workers(workers)
        server.drop(url)
        server.drop(before_url)
