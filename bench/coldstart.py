"""Part 4 — cold start: a fresh `python -c` process per run, timed from outside (start to exit).

For each function, A and B alternate (A B A B …, RUNS pairs, after one probe run of each that also fills
the bytecode caches):

* A, handler: imports `functions.<name>.app` and serves its first request (the pool opens and connects);
* B, libraries only: imports the third-party modules that A had loaded after its first request (found by
  the probe run: psycopg, psycopg_pool, pydantic, aws_lambda_powertools, boto3/botocore when used …).

A - B is what genjobs itself costs a cold start: its own imports, the first request and the connection.
The child also reports its in-process import and first-request times. Bytecode is cached here (.pyc). /opt
is read-only in Lambda, so a layer without bytecode (`make build` on a machine without a Python 3.12) makes
every cold start compile what it imports: the probe run times compile() of every imported source file to
show that cost, which the 3.12 bytecode that `make build` otherwise puts in the layer saves.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from bench.common import BENCH_ENV, ROOT, BenchServer, Report, median, quiet_stdout
from bench.harness import call, handler_modules, is_missing, layer_database
from bench.scenarios import SetupFailed, World
from tests.support.database import set_database

RUNS = 10
MARK = "BENCH_RESULT "
PROJECT_PACKAGES = {"genjobs", "functions", "local_runner", "tests", "bench", "__main__"}

HANDLER_CHILD = """
import time
_t0 = time.perf_counter()
import importlib, json, sys
module = importlib.import_module(sys.argv[1])
_t1 = time.perf_counter()
with open(sys.argv[2]) as f:
    event = json.load(f)
from local_runner.context import LambdaContext  # standard library only; after _t1, so not in the import time

response = module.lambda_handler(event, LambdaContext("genjobs-cold", memory_mb=1024, timeout_seconds=30.0))
_t2 = time.perf_counter()
std = sys.stdlib_module_names
third = sorted(n for n in list(sys.modules) if n.split(".")[0] not in std and n.split(".")[0] not in PROJECT
               and not n.startswith("__editable__") and not n.startswith("_distutils_hack"))
compile_ms = {"project": 0.0, "third": 0.0}
if len(sys.argv) > 3:  # probe: what compiling the imported sources costs when there is no bytecode
    for name, mod in list(sys.modules.items()):
        path = getattr(mod, "__file__", None) or ""
        top = name.split(".")[0]
        if not path.endswith(".py") or top in std:
            continue
        with open(path, "rb") as f:
            source = f.read()
        started = time.perf_counter()
        compile(source, path, "exec")
        compile_ms["project" if top in PROJECT else "third"] += (time.perf_counter() - started) * 1000
print(MARK + json.dumps({"import_ms": (_t1 - _t0) * 1000, "request_ms": (_t2 - _t1) * 1000,
                         "answer": response.get("statusCode", response.get("ok")), "modules": third,
                         "compile_ms": compile_ms}))
""".replace("PROJECT", repr(PROJECT_PACKAGES)).replace("MARK", repr(MARK))

LIBS_CHILD = """
import time
_t0 = time.perf_counter()
import importlib, json, sys
with open(sys.argv[1]) as f:
    names = json.load(f)
failed = 0
for name in names:
    try:
        importlib.import_module(name)
    except Exception:
        failed += 1
_t1 = time.perf_counter()
print(MARK + json.dumps({"import_ms": (_t1 - _t0) * 1000, "failed": failed}))
""".replace("MARK", repr(MARK))


def _child_env(url: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("PYTHON", "BENCH"))}
    env.update(BENCH_ENV)
    env["DATABASE_URL"] = url
    env["PYTHONPATH"] = str(ROOT / "layers" / "shared")  # the layer, as /opt/python is in Lambda
    return env


def _spawn(args: list[str], env: dict[str, str]) -> tuple[float, dict[str, Any]]:
    started = time.perf_counter()
    done = subprocess.run([sys.executable, "-c", *args], cwd=ROOT, env=env, capture_output=True, text=True,
                          timeout=120, check=False)
    wall_ms = (time.perf_counter() - started) * 1000
    for line in done.stdout.splitlines():
        if line.startswith(MARK):
            result: dict[str, Any] = json.loads(line[len(MARK):])
            return wall_ms, result
    raise RuntimeError(f"cold-start child failed ({done.returncode}): {done.stderr[-2000:]}")


def _first_requests(world: World) -> dict[str, Callable[[], dict[str, Any]]]:
    def progress() -> dict[str, Any]:
        job_id = world.queued_job()
        return world.http("GET", f"/jobs/{job_id}", route="/jobs/{job_id}", params={"job_id": str(job_id)})

    def approval() -> dict[str, Any]:
        persona, _ = world.completed_variations()
        return world.http("GET", f"/personas/{persona}/variations", route="/personas/{persona_id}/variations",
                          params={"persona_id": str(persona)})

    return {
        "generation": lambda: world.http("POST", "/personas", body={"name": "Pip"}),
        "progress": progress,
        "limits": lambda: world.http("GET", "/usage"),
        "approval": approval,
        "migrate": lambda: {"action": "pending"},
        "maintenance": lambda: {"action": "sweep"},
    }


def _request_label(event: dict[str, Any]) -> str:
    if "routeKey" in event:
        return str(event["routeKey"])
    return f"invoke {event.get('action')}"


def run(report: Report, server: BenchServer) -> None:
    report.heading(f"Cold start: fresh process, import + first request vs third-party imports only ({RUNS} runs each)")
    url = server.new_database("coldstart")
    db = layer_database(url)
    previous = set_database(db)
    workdir = Path(tempfile.mkdtemp(prefix="genjobs-bench-cold-"))
    try:
        with quiet_stdout():
            modules = handler_modules()
            world = World(db, modules)
            makers = _first_requests(world)
        env = _child_env(url)
        rows: list[list[object]] = []
        for function, make in makers.items():
            try:
                with quiet_stdout():
                    event = make()
                    if is_missing(call(modules[function], json.loads(json.dumps(event)))):
                        event = world.http("GET", "/health") if function == "progress" else event
            except SetupFailed:
                event = world.http("GET", "/health")
            event_path = workdir / f"{function}.json"
            event_path.write_text(json.dumps(event))
            handler_args = [HANDLER_CHILD, f"functions.{function}.app", str(event_path)]
            report.note(f"cold start: {function}")
            _, probe = _spawn([*handler_args, "probe"], env)  # probe: also warms the bytecode caches
            libs_path = workdir / f"{function}.libs.json"
            libs_path.write_text(json.dumps(probe["modules"]))
            libs_args = [LIBS_CHILD, str(libs_path)]
            _spawn(libs_args, env)
            handler_wall: list[float] = []
            libs_wall: list[float] = []
            imports: list[float] = []
            requests: list[float] = []
            lib_imports: list[float] = []
            for _ in range(RUNS):
                wall, result = _spawn(handler_args, env)
                handler_wall.append(wall)
                imports.append(result["import_ms"])
                requests.append(result["request_ms"])
                wall, result = _spawn(libs_args, env)
                libs_wall.append(wall)
                lib_imports.append(result["import_ms"])
            packages = sorted({m.split(".")[0] for m in probe["modules"]} & {
                "psycopg", "psycopg_pool", "pydantic", "aws_lambda_powertools", "boto3", "botocore"})
            rows.append([
                function, f"{_request_label(event)} → {probe['answer']}",
                f"{min(handler_wall):.0f} / {median(handler_wall):.0f}",
                f"{min(libs_wall):.0f} / {median(libs_wall):.0f}",
                f"{median(handler_wall) - median(libs_wall):.0f}",
                f"{median(handler_wall) / median(libs_wall):.2f}x",
                f"{median(imports):.0f} + {median(requests):.0f}",
                f"{median(lib_imports):.0f}",
                f"{probe['compile_ms']['project']:.0f} / {probe['compile_ms']['third']:.0f}",
                ", ".join(packages),
            ])
        report.table(["function", "first request", "handler ms (best / median)", "libs only ms (best / median)",
                      "Δ median ms", "ratio", "in-process: import + request ms", "in-process: libs import ms",
                      "no .pyc: + compile ms (genjobs / third-party)", "third-party packages loaded"], rows)
        report.say("")
        report.say("Process wall time from start to exit (interpreter start-up included in both). The libs-only "
                   "process imports every third-party module the handler process had loaded after its first "
                   "request; Δ is genjobs' own imports plus the first request, its connection included. "
                   "Measured with bytecode cached. /opt is read-only in Lambda, so with a layer built without "
                   "bytecode (no Python 3.12 on the build machine) each cold start there also compiles what it "
                   "imports: the 'no .pyc' column is the time compile() takes for the imported sources (the "
                   "function's and genjobs', then the third-party ones); `make build` with a Python 3.12 ships "
                   "the layer's cpython-312 bytecode instead (the function's own app.py is still compiled).")
    finally:
        set_database(previous)
        db.close()
        server.drop(url)
