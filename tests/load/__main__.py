"""`make load` (`python -m tests.load`): a bounded mixed workload against the local runner, then the checks.

The runner is started as a subprocess (tests/support/runner_process.py) in a temporary directory with fast local
media, a high hourly limit and no regeneration cooldown. LOAD_CLIENTS (16) clients run for LOAD_SECONDS (60):
* merchant clients (4 merchants shared between them): persona → variations (Idempotency-Key, sometimes
  replayed) → long-poll → variations list → approval (sometimes changed) → state videos → long-poll → the
  persona's video_states → the timeline; now and then a start canceled at once;
* readers: pages of GET /jobs with cursors, GET /usage, jobs, timelines, personas;
* external workers (LOAD_CLIENTS // 8): state-video jobs driven with the progress function's direct
  invocations (tests/load/workload.py, ExternalWorker).
Then the clients stop, the jobs still running finish (bounded), and the run fails (exit 1) on any error (a
5xx, an unexpected 4xx, a timeout, a handler that raised in the runner), any violation a client saw, any
statement that would pin an RDS Proxy session, any job left running, or any broken data invariant
(tests/support/invariants.py: zero lost state appends, every job in a legal state, costs charged once, ...).

With LOAD_FAULTS=1 (the default; 0 turns it off) faults are injected (tests/load/faults.py): every backend is
terminated three times and the database stops for ~10 s. Then a 503 with Retry-After (and a direct invoke's
SERVICE_UNAVAILABLE) is an expected answer that ends the flow, the worker's retries of a run_job that met the
outage are expected in the runner's log (they raise so Lambda retries them), and the run also fails on any job
left non-terminal past its lease once maintenance had its time (the runner's leases are short: 10 s, videos 60 s).

LOAD_SECONDS, LOAD_CLIENTS, LOAD_MEDIA_DELAY_MS (20), LOAD_SEED (random: printed), LOAD_FAULTS override the
defaults.
"""

from __future__ import annotations

import os
import random
import re
import shutil
import statistics
import sys
import tempfile
import threading
import time
from collections import Counter
from collections.abc import Callable
from datetime import timedelta
from pathlib import Path
from typing import Any

import psycopg
from psycopg.conninfo import make_conninfo

from tests.load.faults import FaultInjector
from tests.load.workload import Context, ExternalWorker, HttpClient, Stats, Unexpected, merchant_flow, reader_flow
from tests.support.invariants import check_invariants, summary
from tests.support.pinning import is_exempt, pinning_reasons
from tests.support.postgres import EmbeddedServerControl
from tests.support.runner_process import RunnerProcess, token_for

MERCHANTS = 4
MAINTENANCE_INTERVAL_SECONDS = 5
DRAIN_SECONDS = 60.0
# the runner's handlers raised (500s, failed or dropped async invokes, lost S3 notifications)
HANDLER_FAILURE = re.compile(
    r"^.*(raised while serving|asynchronous invocation failed|asynchronous invocation dropped|"
    r"returned a response API Gateway cannot use|scheduled run of .* failed|the runner failed on|"
    r"S3 notification for .* was lost).*$", re.MULTILINE)


def _int_env(name: str, default: int) -> int:
    return int(os.environ.get(name) or default)


def _percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))]


def _run_client(name: str, stats: Stats, deadline: float, body: Callable[[], None]) -> None:
    from genjobs.errors import DatabaseUnavailable

    while time.monotonic() < deadline:
        try:
            body()
        except Unexpected:
            continue  # recorded already; start the next flow
        except DatabaseUnavailable:
            if not stats.faults:
                raise
            stats.count("flows cut by the outage (in-process calls)")
            time.sleep(0.5)
        except Exception as exc:  # a bug in the load client itself must not pass silently
            stats.violation(f"{name}: {type(exc).__name__}: {exc}")
            time.sleep(0.5)


# under faults, the worker's async invocations that met the outage raise (Lambda retries them, then the DLQ), as
# does a maintenance tick: expected, counted, not failures
EXPECTED_UNDER_FAULTS = re.compile(r"asynchronous invocation (failed|dropped)|scheduled run of .* failed")
FAULT_ENV = {"JOB_LEASE_SECONDS": "10", "JOB_VIDEO_LEASE_SECONDS": "60", "VIDEO_POLL_AFTER_SECONDS": "5",
             # a run_job the outage dropped (in AWS: the DLQ) leaves its job queued: re-dispatched within the run
             "REDISPATCH_AFTER_SECONDS": "10"}


def run(seconds: int, clients: int, media_delay_ms: int, seed: int, faults: bool = True) -> int:
    workdir = Path(tempfile.mkdtemp(prefix="genjobs-load-"))
    control: EmbeddedServerControl | None = None
    extra: dict[str, str] = {}
    if faults:
        control = EmbeddedServerControl()
        with psycopg.connect(control.url, autocommit=True) as admin:
            admin.execute("CREATE DATABASE genjobs")
        extra = {"DATABASE_URL": make_conninfo(control.url, dbname="genjobs"), **FAULT_ENV}
        os.environ.update(FAULT_ENV)
    runner = RunnerProcess(workdir / "local", name="load-runner", env={
        **extra,
        "LOCAL_MEDIA_DELAY_MS": str(media_delay_ms),
        "HOURLY_GENERATION_LIMIT": "1000000",
        "REGENERATION_COOLDOWN_HOURS": "0",
        "MAINTENANCE_INTERVAL_SECONDS": str(MAINTENANCE_INTERVAL_SECONDS),
        "LOCAL_MAX_CONTAINERS": str(clients + 8),
        "LOCAL_ASYNC_WORKERS": "8",
        "DB_POOL_MAX_SIZE": str(clients + 8),
        "LOCAL_RUNNER_LOG_LEVEL": "WARNING",
    })
    print(f"load: starting the runner in {workdir} ...", flush=True)
    try:
        runner.start()
        runner.new_log()
        database_url = extra["DATABASE_URL"] if faults else runner.database_url()
        # the external workers run the progress function here, on the runner's database
        os.environ.update({"DATABASE_URL": database_url, "DB_AUTH": "url", "DB_POOL_MAX_SIZE": str(clients),
                           "HOURLY_GENERATION_LIMIT": "1000000", "REGENERATION_COOLDOWN_HOURS": "0",
                           "POWERTOOLS_LOG_LEVEL": "WARNING", "POWERTOOLS_METRICS_DISABLED": "true",
                           "POWERTOOLS_TRACE_DISABLED": "true", "POWERTOOLS_METRICS_NAMESPACE": "genjobs-load"})
        code = _drive(runner, database_url, seconds=seconds, clients=clients, seed=seed, token_for=token_for,
                      control=control)
    finally:
        runner.stop()
        if control is not None:
            control.close()
    if code == 0:
        shutil.rmtree(workdir, ignore_errors=True)
    else:
        print(f"load: the runner's logs are kept in {workdir}")
    return code


def _drive(runner: RunnerProcess, database_url: str, *, seconds: int, clients: int, seed: int,
           token_for: Callable[[str], str], control: EmbeddedServerControl | None = None) -> int:
    stats = Stats(faults=control is not None)
    injector = FaultInjector(control, "genjobs", seconds) if control is not None else None
    deadline = time.monotonic() + seconds
    externals = max(1, clients // 8) if clients >= 3 else 0
    readers = max(1, clients // 4) if clients >= 2 else 0
    merchants = max(1, clients - externals - readers)
    merchant_ids = [f"load-m{i}" for i in range(MERCHANTS)]
    external_ids = [f"load-ext{i}" for i in range(externals)]
    threads: list[threading.Thread] = []
    http_clients: list[HttpClient] = []

    def context(index: int) -> Context:
        return Context(runner.base_url, deadline, stats, token_for, random.Random(seed * 1000 + index))

    for i in range(merchants):
        ctx = context(i)
        client = HttpClient(runner.base_url, token_for(merchant_ids[i % MERCHANTS]), stats)
        http_clients.append(client)
        threads.append(threading.Thread(target=_run_client, name=f"merchant-{i}",
                                        args=(f"merchant-{i}", stats, deadline,
                                              lambda ctx=ctx, client=client: merchant_flow(ctx, client))))
    for i in range(readers):
        ctx = context(100 + i)
        pool = [HttpClient(runner.base_url, token_for(m), stats) for m in merchant_ids + external_ids]
        http_clients += pool
        threads.append(threading.Thread(target=_run_client, name=f"reader-{i}",
                                        args=(f"reader-{i}", stats, deadline,
                                              lambda ctx=ctx, pool=pool: reader_flow(ctx, pool))))
    for i in range(externals):
        ctx = context(200 + i)
        client = HttpClient(runner.base_url, token_for(external_ids[i]), stats)
        http_clients.append(client)
        worker = ExternalWorker(ctx, external_ids[i], client)
        threads.append(threading.Thread(target=_run_client, name=f"external-{i}",
                                        args=(f"external-{i}", stats, deadline, worker.flow)))

    print(f"load: {len(threads)} clients ({merchants} merchant, {readers} reader, {externals} external worker) "
          f"for {seconds} s against {runner.base_url} (seed {seed})", flush=True)
    started = time.monotonic()
    for thread in threads:
        thread.start()
    if injector is not None:
        injector.start()
    for thread in threads:
        thread.join(timeout=max(1.0, deadline - time.monotonic()) + 120.0)
    elapsed = time.monotonic() - started
    if injector is not None:
        injector.halt()
        injector.join(timeout=60)
    for client in http_clients:
        client.close()
    stuck = [t.name for t in threads if t.is_alive()]
    if stuck:
        stats.violation(f"clients still running long after the deadline: {stuck}")

    drained, active = _drain(database_url)
    if active:
        stats.violation(f"{active} job(s) still queued or running {DRAIN_SECONDS:.0f} s after the clients stopped")
    _check_leases(database_url, stats)
    failures = HANDLER_FAILURE.findall(runner.new_log())
    if injector is not None:
        failures = _under_faults(injector, failures, stats)
    statements = runner.new_statements()
    pinning = [s for s in statements if not is_exempt(s) and pinning_reasons(s)]
    grace = timedelta(seconds=2 * MAINTENANCE_INTERVAL_SECONDS + 10)
    violations = check_invariants(database_url, lease_grace=grace)
    jobs = summary(database_url)

    _report(stats, elapsed, drained, jobs, len(statements))
    problems = _problems(stats, failures, pinning, violations)
    if problems:
        print("\nload: FAILED\n" + "\n".join(problems))
        return 1
    print("\nload: OK — no errors, no violations, every invariant holds")
    return 0


def _problems(stats: Stats, failures: list[str], pinning: list[str], violations: list[Any]) -> list[str]:
    problems: list[str] = []
    if stats.errors:
        problems.append(f"{sum(stats.errors.values())} request error(s): " + ", ".join(
            f"{route} -> {status} x{n}" for (route, status), n in stats.errors.most_common()))
        problems += [f"  {sample}" for sample in stats.error_samples]
    problems += [f"client saw: {v}" for v in stats.violations[:20]]
    if failures:
        problems.append(f"{len(failures)} handler failure(s) in the runner log:\n  " + "\n  ".join(failures[:10]))
    if pinning:
        problems.append(f"{len(pinning)} statement(s) would pin an RDS Proxy session, e.g. {pinning[0][:200]}")
    return problems + [f"invariant violated:\n{v}" for v in violations]


def _under_faults(injector: FaultInjector, failures: list[str], stats: Stats) -> list[str]:
    """The handler failures that are failures although faults were injected; reports the faults."""
    expected = [f for f in failures if EXPECTED_UNDER_FAULTS.search(f)]
    stats.count("worker/maintenance invocations that raised in the outage (retried)", len(expected))
    print(f"load: faults: {len(injector.log.terminated)} terminations killing {injector.log.terminated} "
          f"backends; outage(s) of {[round(o, 1) for o in injector.log.outages]} s; "
          f"errors injecting: {injector.log.errors or 'none'}")
    if len(injector.log.terminated) < 3 or not injector.log.outages or injector.log.errors:
        stats.violation(f"the faults were not all injected: {injector.log}")
    return [f for f in failures if not EXPECTED_UNDER_FAULTS.search(f)]


def _check_leases(database_url: str, stats: Stats) -> None:
    """No job may still be processing or generating videos with its lease run out (maintenance should have
    rescued it); counted after the drain, so the sweep had its interval."""
    with psycopg.connect(database_url, autocommit=True) as conn:
        row = conn.execute("SELECT count(*) FROM generation_jobs WHERE status IN ('processing', 'generating_videos') "
                           "AND lease_expires_at < now()").fetchone()
    past_lease = int(row[0]) if row else 0
    stats.count("jobs non-terminal past their lease after the drain", past_lease)
    if past_lease:
        stats.violation(f"{past_lease} job(s) non-terminal past their lease after maintenance had its time")


def _drain(database_url: str) -> tuple[float, int]:
    """Wait (bounded) for the jobs still queued or running; (seconds waited, how many are left)."""
    import psycopg

    started = time.monotonic()
    with psycopg.connect(database_url, autocommit=True) as conn:
        while True:
            row = conn.execute("SELECT count(*) FROM generation_jobs "
                               "WHERE status IN ('queued', 'processing', 'generating_videos')").fetchone()
            active = int(row[0]) if row else 0
            if not active or time.monotonic() - started > DRAIN_SECONDS:
                return time.monotonic() - started, active
            time.sleep(0.2)


def _report(stats: Stats, elapsed: float, drained: float, jobs: dict[str, int], statements: int) -> None:
    total = sum(stats.statuses.values())
    print(f"\nload: {total} requests in {elapsed:.1f} s ({total / elapsed:.0f}/s); "
          f"drained in {drained:.1f} s; {statements} SQL statements")
    print(f"{'route':<50} {'count':>7} {'p50 ms':>8} {'p95 ms':>8}  statuses")
    by_route: dict[str, Counter[str]] = {}
    for (route, status), n in stats.statuses.items():
        by_route.setdefault(route, Counter())[status] = n
    for route in sorted(stats.latencies):
        values = stats.latencies[route]
        codes = " ".join(f"{s}:{n}" for s, n in sorted(by_route.get(route, Counter()).items()))
        print(f"{route:<50} {len(values):>7} {1000 * statistics.median(values):>8.1f} "
              f"{1000 * _percentile(values, 0.95):>8.1f}  {codes}")
    errors = sum(stats.errors.values())
    print(f"errors: {errors}" + (f" ({dict(stats.errors)})" if errors else ""))
    print(f"client checks: {dict(sorted(stats.counters.items()))}; violations seen: {len(stats.violations)}")
    print(f"jobs: {jobs}")


def main() -> int:
    seconds = _int_env("LOAD_SECONDS", 60)
    clients = _int_env("LOAD_CLIENTS", 16)
    media_delay_ms = _int_env("LOAD_MEDIA_DELAY_MS", 20)
    seed = _int_env("LOAD_SEED", random.randrange(1, 10**6))
    if seconds < 1 or clients < 1:
        print("LOAD_SECONDS and LOAD_CLIENTS must be >= 1", file=sys.stderr)
        return 2
    return run(seconds, clients, media_delay_ms, seed, faults=os.environ.get("LOAD_FAULTS", "1") != "0")


if __name__ == "__main__":
    sys.exit(main())
