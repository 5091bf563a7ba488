"""`python -m bench` (what `make bench` runs): PART=all|pool|roundtrips|overhead|longpoll|lifecycle|coldstart|scale|
webhooks
(comma-separated for several). Results are printed and appended to bench/RESULTS.md."""

from __future__ import annotations

import os
import sys
import time
import traceback
import warnings
from collections.abc import Callable
from datetime import UTC, datetime

from bench.common import ROOT, BenchServer, Report, apply_env, machine_line, versions_line

PARTS = ("pool", "roundtrips", "overhead", "longpoll", "lifecycle", "coldstart", "scale", "webhooks")
RESULTS = ROOT / "bench" / "RESULTS.md"


def _selected(raw: str) -> list[str]:
    wanted = [p.strip() for p in raw.split(",") if p.strip()] or ["all"]
    if wanted == ["all"]:
        return list(PARTS)
    unknown = [p for p in wanted if p not in PARTS]
    if unknown:
        raise SystemExit(f"unknown PART {', '.join(unknown)}; choose all or one of {', '.join(PARTS)}")
    return wanted


def _runner(part: str) -> Callable[[Report, BenchServer], object]:
    if part == "pool":
        from bench import pool

        return pool.run
    if part == "roundtrips":
        from bench import roundtrips

        return roundtrips.run
    if part == "overhead":
        from bench import overhead

        return overhead.run
    if part == "longpoll":
        from bench import longpoll

        return longpoll.run
    if part == "lifecycle":
        from bench import lifecycle

        return lifecycle.run
    if part == "coldstart":
        from bench import coldstart

        return coldstart.run
    if part == "webhooks":
        from bench import webhooks

        return webhooks.run
    from bench import scale

    return scale.run


def main() -> int:
    raw = os.environ.get("PART") or (sys.argv[1] if len(sys.argv) > 1 else "all")
    parts = _selected(raw)
    apply_env()
    warnings.filterwarnings("ignore", message="No application metrics to publish")
    warnings.filterwarnings("ignore", message=".*XDG_RUNTIME_DIR.*")
    started = time.monotonic()
    when = datetime.now(UTC)
    report = Report()
    server = BenchServer()
    failed: list[str] = []
    timings: list[str] = []
    try:
        report.say(f"## {when:%Y-%m-%d %H:%M} UTC — `make bench PART={raw}`")
        report.say("")
        report.say(f"- Machine: {machine_line()}")
        report.say(f"- Versions: {versions_line(server.server_version())}")
        report.say(f"- Database: {server.label}; shared_buffers {server.setting('shared_buffers')}, "
                   f"synchronous_commit {server.setting('synchronous_commit')}, "
                   f"max_connections {server.setting('max_connections')}")
        for part in parts:
            part_started = time.monotonic()
            try:
                _runner(part)(report, server)
            except Exception:
                failed.append(part)
                report.say("")
                report.say(f"**{part} failed:**")
                report.say("```")
                for line in traceback.format_exc().rstrip().splitlines():
                    report.say(line)
                report.say("```")
            timings.append(f"{part} {time.monotonic() - part_started:.0f} s")
    finally:
        server.close()
    total = time.monotonic() - started
    report.say("")
    report.say(f"Wall time: {int(total // 60)} min {int(total % 60)} s ({', '.join(timings)}).")
    report.say("")
    with RESULTS.open("a", encoding="utf-8") as f:
        if RESULTS.stat().st_size == 0:
            f.write("# Benchmark results\n\nAppended by `make bench` (bench/__main__.py), newest last.\n\n")
        f.write("\n".join(report.lines) + "\n")
    print(f"appended to {RESULTS.relative_to(ROOT)}", file=sys.__stdout__)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
