"""Part 0 — the layer's pool: warm `fetch_one` through `genjobs.db` vs raw psycopg, interleaved, and the cold
import of `genjobs.db` vs psycopg + psycopg_pool alone.

The query is the same single-row read on both sides (rows as dicts on both, so the comparison is the pool
checkout, the liveness poll, the instrumented cursor and the helper, nothing else).
"""

from __future__ import annotations

import random
import subprocess
import sys
import time

from psycopg.rows import dict_row

from bench.common import ROOT, BenchServer, Report, connect_raw, fmt_ratio, median, percentile, ratio
from bench.harness import layer_database

QUERY = "SELECT %s::int AS n, now() AS at"
WARMUP = 500
ITERATIONS = 20_000
IMPORT_RUNS = 10


def _import_seconds(module: str) -> float:
    code = f"import time; t = time.perf_counter(); import {module}; print(time.perf_counter() - t)"
    env = {"PYTHONPATH": str(ROOT / "layers" / "shared"), "PATH": "/usr/bin:/bin"}
    out = subprocess.run([sys.executable, "-c", code], check=True, capture_output=True, text=True, env=env)
    return float(out.stdout.strip())


def run(report: Report, server: BenchServer) -> None:
    report.heading("Pool: warm fetch_one through genjobs.db vs raw psycopg (same query, interleaved)")
    url = server.new_database("pool")
    db = layer_database(url)
    raw = connect_raw(url)
    try:
        timings: dict[str, list[float]] = {"genjobs.db fetch_one": [], "raw psycopg": []}

        def layer(n: int) -> None:
            db.fetch_one(QUERY, (n,))

        def plain(n: int) -> None:
            with raw.cursor(row_factory=dict_row) as cur:
                cur.execute(QUERY, (n,))
                cur.fetchone()

        variants = [("genjobs.db fetch_one", layer), ("raw psycopg", plain)]
        for n in range(WARMUP):
            for _, fn in variants:
                fn(n)
        for n in range(ITERATIONS):
            random.shuffle(variants)
            for name, fn in variants:
                started = time.perf_counter()
                fn(n)
                timings[name].append((time.perf_counter() - started) * 1e6)
        base = median(timings["raw psycopg"])
        report.table(["variant", "median µs", "p99 µs", "ratio of medians"], [
            [name, f"{median(v):.1f}", f"{percentile(v, 99):.1f}", fmt_ratio(ratio(median(v), base))]
            for name, v in timings.items()
        ])
    finally:
        raw.close()
        db.close()
        server.drop(url)

    report.heading(f"Cold import (fresh process, best and median of {IMPORT_RUNS})")
    rows = []
    for module in ("genjobs.db", "psycopg, psycopg_pool"):
        runs = sorted(_import_seconds(module) * 1000 for _ in range(IMPORT_RUNS))
        rows.append([f"import {module}", f"{runs[0]:.1f}", f"{median(runs):.1f}"])
    report.table(["what", "best ms", "median ms"], rows)
