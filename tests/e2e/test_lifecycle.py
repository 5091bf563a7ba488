"""Starting and stopping: Ctrl-C (SIGINT) stops the runner and its PostgreSQL within 5 s and leaves no
process behind; a runner killed with SIGKILL (alone, or together with its PostgreSQL) is recovered by the
next start, with the data kept."""

from __future__ import annotations

import contextlib
import os
import signal
import time
from collections.abc import Iterator
from pathlib import Path

import psutil
import pytest

from tests.support.runner_process import RunnerProcess, process_gone, processes_using, request, token_for

STOP_LIMIT_SECONDS = 5.0


@pytest.fixture
def workdir(tmp_path: Path) -> Iterator[Path]:
    yield tmp_path
    for proc in processes_using(tmp_path):  # whatever a failed test left behind
        with contextlib.suppress(psutil.Error):
            proc.kill()


def _wait_gone(pids: list[int | None], deadline: float) -> list[int]:
    while time.monotonic() < deadline:
        alive = [p for p in pids if p is not None and not process_gone(p)]
        if not alive:
            return []
        time.sleep(0.05)
    return [p for p in pids if p is not None and not process_gone(p)]


def _sigint_and_check(runner: RunnerProcess, workdir: Path, sig: int = signal.SIGINT) -> float:
    postgres = runner.postgres_pid()
    assert postgres is not None and not process_gone(postgres)
    children = [c.pid for c in runner.children()]
    started = time.monotonic()
    runner.send(sig)
    code = runner.wait(STOP_LIMIT_SECONDS)
    deadline = started + STOP_LIMIT_SECONDS
    assert code == 0, f"runner exit code {code} (None: still running after {STOP_LIMIT_SECONDS} s)\n{runner.tail()}"
    left = _wait_gone([postgres, *children], deadline)
    elapsed = time.monotonic() - started
    assert not left, f"still running {elapsed:.1f} s after SIGINT: {left}\n{runner.tail()}"
    leftovers = [(p.pid, p.name()) for p in processes_using(workdir)]
    assert not leftovers, f"processes still using {workdir}: {leftovers}"
    return elapsed


@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGTERM], ids=["SIGINT", "SIGTERM"])
def test_a_signal_stops_runner_and_postgres_within_5_seconds(workdir: Path, sig: int) -> None:
    runner = RunnerProcess(workdir / "local", name="stop").start()
    merchant = "e2e-sigint"
    # some work in flight when the signal comes: a persona and a generation
    persona = request(runner.base_url, "POST", "/personas", token=token_for(merchant), body={"name": "Sig"})
    assert persona.status == 201, persona.body
    started = request(runner.base_url, "POST", f"/personas/{persona.json['id']}/generations",
                      token=token_for(merchant), body={})
    assert started.status == 202, started.body
    elapsed = _sigint_and_check(runner, workdir, sig)
    assert elapsed < STOP_LIMIT_SECONDS
    assert "stopped" in runner.stderr_path.read_text()


def test_a_killed_runner_is_recovered_by_the_next_start(workdir: Path) -> None:
    local = workdir / "local"
    token = token_for("e2e-recovery")

    first = RunnerProcess(local, name="first").start()
    persona = request(first.base_url, "POST", "/personas", token=token, body={"name": "Survivor"})
    assert persona.status == 201, persona.body
    postgres = first.postgres_pid()
    os.kill(first.pid, signal.SIGKILL)
    assert first.wait(5) is not None
    assert postgres is not None and not process_gone(postgres), "the server outlives a killed runner"

    # 1. the server is still running, with the dead runner in pgserver's handle list: reused
    second = RunnerProcess(local, name="second").start()
    assert second.postgres_pid() == postgres
    log = second.stderr_path.read_text()
    assert "reusing the server left running by an earlier run" in log, second.tail()
    assert "dropped dead runner pid" in log, second.tail()
    reply = request(second.base_url, "GET", f"/personas/{persona.json['id']}", token=token)
    assert reply.status == 200, reply.body

    # 2. runner and server both killed (a crash, an OOM kill): stale postmaster.pid and socket lock
    os.kill(second.pid, signal.SIGKILL)
    os.kill(postgres, signal.SIGKILL)
    assert second.wait(5) is not None
    third = RunnerProcess(local, name="third").start()
    assert third.postgres_pid() != postgres
    assert "removed a stale postmaster.pid" in third.stderr_path.read_text(), third.tail()
    reply = request(third.base_url, "GET", f"/personas/{persona.json['id']}", token=token)
    assert reply.status == 200, reply.body

    # 3. and this one, stopped with Ctrl-C, takes its server down with it
    _sigint_and_check(third, workdir)


def test_a_second_runner_on_a_busy_port_refuses_to_start(workdir: Path, runner: RunnerProcess) -> None:
    port = runner.base_url.rsplit(":", 1)[1]
    clash = RunnerProcess(workdir / "local", name="clash", env={"PORT": port})
    with pytest.raises(RuntimeError, match="in use"):
        clash.start(timeout=60)
    assert not (workdir / "local" / "pgdata").exists(), "the port is checked before the database starts"
