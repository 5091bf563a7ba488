"""What every part shares: statistics, the report, the database server and the process environment."""

from __future__ import annotations

import contextlib
import io
import math
import os
import platform
import statistics
import sys
import time
import uuid
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from importlib import metadata
from pathlib import Path
from typing import Any, TextIO

import psycopg
from psycopg import sql

ROOT = Path(__file__).resolve().parents[1]

# What the handlers read from the environment, set before any handler module is imported. Limits are
# high so that the benchmarks measure work, not 429s; the log level is the deployed one (template.yaml).
BENCH_ENV = {
    "AWS_REGION": "us-east-1",
    "AWS_DEFAULT_REGION": "us-east-1",
    "AWS_ACCESS_KEY_ID": "bench",
    "AWS_SECRET_ACCESS_KEY": "bench",
    "POWERTOOLS_SERVICE_NAME": "genjobs",
    "POWERTOOLS_METRICS_NAMESPACE": "genjobs-bench",
    "POWERTOOLS_TRACE_DISABLED": "true",
    "LOG_LEVEL": "INFO",
    "HOURLY_GENERATION_LIMIT": "100000000",
    "REGENERATION_COOLDOWN_HOURS": "0",
    "MEDIA_BUCKET": "genjobs-bench-media",
    # the list cursors' signing key (a list route refuses to answer without one); bench-only
    "CURSOR_KEYS": "bench-only-cursor-key-0123456789abcdef",
}


def apply_env(database_url: str | None = None) -> None:
    for key, value in BENCH_ENV.items():
        os.environ.setdefault(key, value)
    os.environ["HOURLY_GENERATION_LIMIT"] = BENCH_ENV["HOURLY_GENERATION_LIMIT"]
    os.environ["REGENERATION_COOLDOWN_HOURS"] = BENCH_ENV["REGENERATION_COOLDOWN_HOURS"]
    if database_url is not None:
        os.environ["DATABASE_URL"] = database_url


# -- statistics ------------------------------------------------------------------------------------------


def percentile(values: Sequence[float], q: float) -> float:
    """The q-th percentile (0-100), linear interpolation between closest ranks."""
    if not values:
        return float("nan")
    ordered = sorted(values)
    if len(ordered) == 1:
        return ordered[0]
    rank = (len(ordered) - 1) * q / 100.0
    low = int(rank)
    high = min(low + 1, len(ordered) - 1)
    return ordered[low] + (ordered[high] - ordered[low]) * (rank - low)


def median(values: Sequence[float]) -> float:
    return statistics.median(values) if values else float("nan")


def fmt_ms(value: float) -> str:
    if math.isnan(value):
        return "—"
    if value >= 100:
        return f"{value:.0f}"
    if value >= 10:
        return f"{value:.1f}"
    return f"{value:.3f}"


def fmt_ratio(value: float) -> str:
    return "—" if math.isnan(value) else f"{value:.2f}x"


def ratio(a: float, b: float) -> float:
    return a / b if b else float("nan")


# -- the report -----------------------------------------------------------------------------------------


@dataclass
class Report:
    """Markdown printed as it is produced and kept for RESULTS.md."""

    lines: list[str] = field(default_factory=list)
    out: TextIO = field(default_factory=lambda: sys.__stdout__ or sys.stdout)

    def say(self, text: str = "") -> None:
        self.lines.append(text)
        print(text, file=self.out, flush=True)

    def note(self, text: str) -> None:
        """Progress chatter: printed, not recorded."""
        print(f"  · {text}", file=self.out, flush=True)

    def heading(self, text: str) -> None:
        self.say("")
        self.say(f"### {text}")
        self.say("")

    def table(self, header: Sequence[str], rows: Sequence[Sequence[object]]) -> None:
        cells = [[str(c) for c in header], *[[str(c) for c in row] for row in rows]]
        widths = [max(len(r[i]) for r in cells) for i in range(len(header))]

        def line(row: Sequence[str]) -> str:
            return "| " + " | ".join(c.ljust(w) for c, w in zip(row, widths, strict=True)) + " |"

        self.say(line(cells[0]))
        self.say("|" + "|".join("-" * (w + 2) for w in widths) + "|")
        for row in cells[1:]:
            self.say(line(row))


# -- machine and versions --------------------------------------------------------------------------------


def cpu_model() -> str:
    with contextlib.suppress(OSError):
        for raw in Path("/proc/cpuinfo").read_text().splitlines():
            if raw.startswith("model name"):
                return raw.split(":", 1)[1].strip()
    return platform.processor() or platform.machine()


def memory_gib() -> float:
    with contextlib.suppress(OSError, ValueError, IndexError):
        for raw in Path("/proc/meminfo").read_text().splitlines():
            if raw.startswith("MemTotal:"):
                return int(raw.split()[1]) / 1024 / 1024
    return float("nan")


def package_version(name: str) -> str:
    try:
        return metadata.version(name)
    except metadata.PackageNotFoundError:
        return "not installed"


def machine_line() -> str:
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    return (f"{cores} CPUs (nproc), {cpu_model()}, {memory_gib():.1f} GiB RAM, "
            f"{platform.system()} {platform.release()}")


def versions_line(server_version: str) -> str:
    libpq = psycopg.pq.version()
    libs = ", ".join(f"{name} {package_version(name)}" for name in
                     ("psycopg-pool", "pydantic", "aws-lambda-powertools", "boto3", "pgqueuer", "procrastinate"))
    return (f"Python {platform.python_version()}, PostgreSQL {server_version}, psycopg {psycopg.__version__} "
            f"(libpq {libpq // 10000}.{libpq % 100}, {psycopg.pq.__impl__}), {libs}")


# -- the database server --------------------------------------------------------------------------------


class BenchServer:
    """DATABASE_URL's server, or an embedded PostgreSQL (pgserver) in a temporary directory. Each part gets
    its own migrated database (`genjobs_bench_<part>_<hex>`), dropped at the end."""

    def __init__(self) -> None:
        sys.path.insert(0, str(ROOT))
        from tests.support.postgres import cluster_from_env

        self.embedded = not os.environ.get("DATABASE_URL")
        self.cluster = cluster_from_env()

    @property
    def label(self) -> str:
        return "embedded pgserver (temp dir)" if self.embedded else "DATABASE_URL"

    def server_version(self) -> str:
        with self.cluster.admin() as conn:
            row = conn.execute("SELECT current_setting('server_version')").fetchone()
        return str(row[0]) if row else "?"

    def setting(self, name: str) -> str:
        with self.cluster.admin() as conn:
            row = conn.execute("SELECT current_setting(%s)", (name,)).fetchone()
        return str(row[0]) if row else "?"

    def new_database(self, part: str, *, before_version: int | None = None) -> str:
        """A migrated database; with `before_version`, only the migrations numbered below it (the schema an
        older release had, to compare with in the same run)."""
        from genjobs.db import Database, DatabaseSettings
        from genjobs.db.migrations import load_migrations, migrate

        name = f"genjobs_bench_{part}_{uuid.uuid4().hex[:8]}"
        url = self.cluster.create_database(name)
        db = Database(DatabaseSettings(url=url, pool_min_size=0))
        try:
            migrations = load_migrations()
            if before_version is not None:
                migrations = [m for m in migrations if m.version < before_version]
            migrate(db, migrations)
        finally:
            db.close()
        return url

    def drop(self, url: str) -> None:
        from psycopg.conninfo import conninfo_to_dict

        name = conninfo_to_dict(url).get("dbname")
        if name:
            with self.cluster.admin() as conn:
                conn.execute(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(str(name))))
            if name in self.cluster.created:
                self.cluster.created.remove(str(name))

    def close(self) -> None:
        self.cluster.close()


def connect_raw(url: str) -> psycopg.Connection[Any]:
    """A plain psycopg connection configured like the layer's (autocommit, never prepared)."""
    return psycopg.connect(url, autocommit=True, prepare_threshold=None)


# -- process helpers -------------------------------------------------------------------------------------


class _Sink(io.TextIOBase):
    def write(self, text: str) -> int:
        return len(text)


@contextlib.contextmanager
def quiet_stdout() -> Iterator[None]:
    """Handlers print EMF metrics to stdout (CloudWatch reads it in Lambda); keep them off the report."""
    with contextlib.redirect_stdout(_Sink()):
        yield


def timed(fn: Callable[[], Any]) -> tuple[float, Any]:
    started = time.perf_counter()
    result = fn()
    return (time.perf_counter() - started) * 1000.0, result
