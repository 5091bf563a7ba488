"""Part — long-poll: how long after a change a waiting `GET /jobs/{id}?wait=20` answers, and what it reads.

The progress handler is called in-process with an API Gateway event whose If-None-Match names the job's
current version; another connection changes the job (a step reported, as a worker does) after a random
delay, so the change lands anywhere in the tick. Change-to-answer is from that UPDATE's commit (its
`execute` returned) to the handler's answer. Every statement the handler sends is counted (the statement
recorder): the first is the read any GET pays; the ones after it are what waiting costs, so reads per waiting
second counts those (all reads per answer are shown too).

Variants, interleaved sample by sample: the tick of today's default (LONG_POLL_TICK_MS) and the 500 ms
tick of before issue 18, the same handler, code and database. Targets (issue 18): median ≤ 150 ms, p95 ≤
300 ms, ≤ 10 primary-key reads per waiting second; no LISTEN and no session state (only the job's
primary-key read, on the pooled connection).
"""

from __future__ import annotations

import copy
import random
import threading
import time
from typing import Any

from genjobs import dependencies
from genjobs.db import record_statements
from genjobs.settings import Settings

from bench.common import BenchServer, Report, connect_raw, median, percentile, quiet_stdout
from bench.harness import call, handler_modules, layer_database, succeeded
from bench.scenarios import World
from tests.support.database import set_database

SAMPLES = 60  # per variant
OLD_TICK_MS = 500
MEDIAN_TARGET_MS = 150.0
P95_TARGET_MS = 300.0
READS_TARGET = 10.0
# the change comes this long after the request started: past the first read, at a random phase of the tick
DELAY_SECONDS = (0.15, 1.15)


def _sample(module: Any, world: World, url: str, tick_ms: int, delay: float) -> tuple[float, int, float]:
    """(ms from the change's commit to the answer, statements the handler sent, seconds it waited)."""
    job_id = world.queued_job()
    event = world.http("GET", f"/jobs/{job_id}", route="/jobs/{job_id}", params={"job_id": str(job_id)},
                       query={"wait": "20"}, headers={"if-none-match": '"1"'})
    committed: list[float] = []

    def change() -> None:
        time.sleep(delay)
        with connect_raw(url) as conn:
            conn.execute("UPDATE generation_jobs SET current_step = 'rendering', progress = 10 WHERE id = %s",
                         (job_id,))
            committed.append(time.perf_counter())

    changer = threading.Thread(target=change)
    with dependencies.overridden(settings=Settings(long_poll_tick_ms=tick_ms)):
        started = time.perf_counter()
        changer.start()
        with record_statements() as recorder:
            response = call(module, copy.deepcopy(event))
        answered = time.perf_counter()
    changer.join()
    if not succeeded(response) or response.get("headers", {}).get("ETag") != '"2"' or not committed:
        raise RuntimeError(f"long-poll answered {response.get('statusCode')} {response.get('headers')}")
    return (answered - committed[0]) * 1000.0, recorder.count, answered - started


def _waiting_reads(reads: dict[int, int], waited: dict[int, float], tick: int) -> float:
    return (reads[tick] - SAMPLES) / waited[tick]


def run(report: Report, server: BenchServer) -> None:
    new_tick = Settings().long_poll_tick_ms
    report.heading(f"Long-poll: change-to-answer of GET /jobs/{{id}}?wait=20, {SAMPLES} changes per tick, "
                   "interleaved")
    url = server.new_database("longpoll")
    db = layer_database(url)
    previous = set_database(db)
    rng = random.Random(18)
    try:
        with quiet_stdout():
            modules = handler_modules()
            world = World(db, modules)
        ticks = (new_tick, OLD_TICK_MS) if new_tick != OLD_TICK_MS else (new_tick,)
        latencies: dict[int, list[float]] = {t: [] for t in ticks}
        reads: dict[int, int] = dict.fromkeys(ticks, 0)
        waited: dict[int, float] = dict.fromkeys(ticks, 0.0)
        for i in range(SAMPLES):
            order = list(ticks)
            rng.shuffle(order)
            delay = rng.uniform(*DELAY_SECONDS)
            for tick in order:
                with quiet_stdout():
                    ms, count, seconds = _sample(modules["progress"], world, url, tick, delay)
                latencies[tick].append(ms)
                reads[tick] += count
                waited[tick] += seconds
            if (i + 1) % 20 == 0:
                report.note(f"longpoll: {i + 1}/{SAMPLES}")
        rows = []
        verdicts = []
        for tick in ticks:
            values = latencies[tick]
            med, p95 = median(values), percentile(values, 95)
            # the request's own first read is what a plain GET pays; the wait's cost is the reads after it
            per_second = (reads[tick] - len(values)) / waited[tick] if waited[tick] else float("nan")
            label = f"{tick} ms" + (" (default)" if tick == new_tick else " (before issue 18)")
            rows.append([label, len(values), f"{med:.0f}", f"{p95:.0f}", f"{max(values):.0f}",
                         f"{reads[tick] / len(values):.1f}", f"{per_second:.1f}"])
            if tick == new_tick:
                ok = med <= MEDIAN_TARGET_MS and percentile(values, 95) <= P95_TARGET_MS and \
                    per_second <= READS_TARGET
                verdicts.append(
                    f"- tick {tick} ms: median {med:.0f} ms, p95 {p95:.0f} ms, {per_second:.1f} primary-key reads per "
                    f"waiting second (targets ≤ {MEDIAN_TARGET_MS:.0f} ms, ≤ {P95_TARGET_MS:.0f} ms, "
                    f"≤ {READS_TARGET:.0f}/s: {'ok' if ok else '**MISS**'})")
        report.table(["tick", "changes", "median ms", "p95 ms", "max ms", "reads per answer (all)",
                      "reads per waiting second (after the first)"], rows)
        report.say("")
        for line in verdicts:
            report.say(line)
        if len(ticks) == 2:
            report.say(f"- the {OLD_TICK_MS} ms tick: median {median(latencies[OLD_TICK_MS]):.0f} ms; ratio of medians "
                       f"{median(latencies[OLD_TICK_MS]) / median(latencies[new_tick]):.1f}x for "
                       f"{_waiting_reads(reads, waited, new_tick) / _waiting_reads(reads, waited, OLD_TICK_MS):.1f}x "
                       "the reads per waiting second")
    finally:
        set_database(previous)
        db.close()
        server.drop(url)
