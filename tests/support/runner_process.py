"""The local runner as a subprocess, the way a developer runs it (`python -m local_runner`), plus a small
HTTP client for talking to it as a merchant, and the checks of what the runner logged (used by tests/e2e and
`make load`)."""

from __future__ import annotations

import contextlib
import http.client
import json
import os
import re
import signal
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import psutil
from psycopg.conninfo import make_conninfo

from local_runner.auth import issue_token
from local_runner.settings import local_settings

REPO_ROOT = Path(__file__).resolve().parents[2]
START_TIMEOUT_SECONDS = 120.0  # a cold CI machine: initdb, migrations, imports
_API_LINE = re.compile(r"^\s+API\s+(http://\S+)\s*$", re.MULTILINE)
JOB_DEADLINE_SECONDS = 60.0
# a line of the runner's log saying that a function raised or an event was lost
HANDLER_FAILURE = re.compile(
    r"^.*(raised while serving|asynchronous invocation failed|asynchronous invocation dropped|"
    r"returned a response API Gateway cannot use|scheduled run of .* failed|the runner failed on|"
    r"S3 notification for .* was lost).*$",
    re.MULTILINE,
)


@dataclass
class Reply:
    status: int
    headers: dict[str, str]
    body: bytes

    @property
    def json(self) -> Any:
        return json.loads(self.body or b"null")

    def header(self, name: str) -> str | None:
        return self.headers.get(name.lower())


def request(base_url: str, method: str, path: str, *, token: str | None = None, body: Any = None,
            raw_body: bytes | None = None, headers: dict[str, str] | None = None, timeout: float = 30.0) -> Reply:
    parts = urlsplit(base_url)
    conn = http.client.HTTPConnection(parts.hostname or "127.0.0.1", parts.port or 80, timeout=timeout)
    all_headers = dict(headers or {})
    if token is not None:
        all_headers["Authorization"] = f"Bearer {token}"
    payload = raw_body
    if body is not None:
        payload = json.dumps(body).encode()
        all_headers.setdefault("Content-Type", "application/json")
    try:
        conn.request(method, path, body=payload, headers=all_headers)
        response = conn.getresponse()
        data = response.read()
        return Reply(response.status, {k.lower(): v for k, v in response.getheaders()}, data)
    finally:
        conn.close()


def get_url(url: str, timeout: float = 10.0) -> Reply:
    parts = urlsplit(url)
    path = parts.path + (f"?{parts.query}" if parts.query else "")
    return request(f"{parts.scheme}://{parts.netloc}", "GET", path, timeout=timeout)


def token_for(merchant_id: str, **kwargs: Any) -> str:
    """A bearer token the runner's emulated authorizer accepts (its default secret and merchant claim)."""
    return issue_token(merchant_id, secret=local_settings().jwt_secret, merchant_claim=local_settings().merchant_claim,
                       **kwargs)


@dataclass
class Merchant:
    """A merchant's integration talking to a runner over HTTP with its token."""

    id: str
    token: str
    base_url: str

    def call(self, method: str, path: str, body: Any = None, **kwargs: Any) -> Reply:
        return request(self.base_url, method, path, token=self.token, body=body, **kwargs)


def wait_for_job(merchant: Merchant, job_id: str, deadline_seconds: float = JOB_DEADLINE_SECONDS) -> dict[str, Any]:
    """Long-poll the job until it finishes (bounded)."""
    deadline = time.monotonic() + deadline_seconds
    seen: list[str] = []
    while time.monotonic() < deadline:
        reply = merchant.call("GET", f"/jobs/{job_id}?wait=5")
        assert reply.status == 200, reply.body
        job: dict[str, Any] = reply.json
        seen.append(f"{job['status']}/{job['progress']}")
        if job["status"] in ("completed", "failed", "canceled"):
            return job
    raise AssertionError(f"job {job_id} did not finish within {deadline_seconds:.0f} s; seen {seen}")


class RunnerProcess:
    """`python -m local_runner` on a free port (PORT=0) with its own data directory."""

    def __init__(self, local_dir: Path, *, env: dict[str, str] | None = None, name: str = "runner") -> None:
        self.local_dir = local_dir
        self.name = name
        self.extra_env = env or {}
        self.stdout_path = local_dir.parent / f"{name}.stdout.log"
        self.stderr_path = local_dir.parent / f"{name}.stderr.log"
        self.statement_log = local_dir.parent / f"{name}.statements.jsonl"
        self.proc: subprocess.Popen[bytes] | None = None
        self.base_url = ""
        self._log_offset = 0
        self._statement_offset = 0

    def start(self, timeout: float = START_TIMEOUT_SECONDS) -> RunnerProcess:
        env = {k: v for k, v in os.environ.items() if k not in ("DATABASE_URL", "PORT")}
        env.update({
            "PORT": "0",
            "GENJOBS_LOCAL_DIR": str(self.local_dir),
            "LOCAL_STATEMENT_LOG": str(self.statement_log),
            "PYTHONUNBUFFERED": "1",
            **self.extra_env,
        })
        self.local_dir.parent.mkdir(parents=True, exist_ok=True)
        with self.stdout_path.open("ab") as out, self.stderr_path.open("ab") as err:
            self.proc = subprocess.Popen([sys.executable, "-m", "local_runner"], cwd=REPO_ROOT, env=env,
                                         stdout=out, stderr=err, stdin=subprocess.DEVNULL)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"{self.name} exited with {self.proc.returncode} during start-up:\n{self.tail()}")
            match = _API_LINE.search(self.stdout_path.read_text(errors="replace"))
            if match:
                self.base_url = match.group(1)
                break
            time.sleep(0.05)
        else:
            raise TimeoutError(f"{self.name} printed no URL within {timeout:.0f} s:\n{self.tail()}")
        self.wait_healthy(deadline - time.monotonic())
        return self

    def wait_healthy(self, timeout: float) -> float:
        """Poll GET /health until 200 (bounded); return the seconds it took."""
        started = time.monotonic()
        last = "no answer"
        while time.monotonic() - started < max(timeout, 1.0):
            try:
                reply = request(self.base_url, "GET", "/health", timeout=5)
                if reply.status == 200:
                    return time.monotonic() - started
                last = f"{reply.status} {reply.body[:200]!r}"
            except OSError as exc:
                last = repr(exc)
            time.sleep(0.05)
        raise TimeoutError(f"{self.name}: /health never answered 200 (last: {last}):\n{self.tail()}")

    @property
    def pid(self) -> int:
        assert self.proc is not None
        return self.proc.pid

    def postgres_pid(self) -> int | None:
        try:
            return int((self.local_dir / "pgdata" / "postmaster.pid").read_text().splitlines()[0])
        except (OSError, IndexError, ValueError):
            return None

    def database_url(self, dbname: str = "genjobs") -> str:
        """A URL for the runner's embedded PostgreSQL (the socket directory and port from its postmaster.pid,
        lines 5 and 4), to check data behind the HTTP API."""
        lines = (self.local_dir / "pgdata" / "postmaster.pid").read_text().splitlines()
        port, socket_dir = lines[3].strip(), lines[4].strip()
        return make_conninfo("", host=socket_dir or "127.0.0.1", port=port, user="postgres", dbname=dbname)

    def children(self) -> list[psutil.Process]:
        with contextlib.suppress(psutil.NoSuchProcess):
            return psutil.Process(self.pid).children(recursive=True)
        return []

    def send(self, sig: int) -> None:
        assert self.proc is not None
        self.proc.send_signal(sig)

    def wait(self, timeout: float) -> int | None:
        assert self.proc is not None
        try:
            return self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            return None

    def stop(self, timeout: float = 10.0) -> int | None:
        """SIGINT, then SIGKILL if it is still there; always leaves no runner process."""
        if self.proc is None or self.proc.poll() is not None:
            return self.proc.returncode if self.proc else None
        self.send(signal.SIGINT)
        code = self.wait(timeout)
        if code is None:
            self.proc.kill()
            code = self.wait(5)
        return code

    def tail(self, lines: int = 60) -> str:
        out = []
        for path in (self.stdout_path, self.stderr_path):
            if path.exists():
                text = path.read_text(errors="replace").splitlines()[-lines:]
                out.append(f"--- {path.name}\n" + "\n".join(text))
        return "\n".join(out)

    def new_log(self) -> str:
        """stderr written since the last call."""
        if not self.stderr_path.exists():
            return ""
        with self.stderr_path.open("rb") as fh:
            fh.seek(self._log_offset)
            data = fh.read()
        self._log_offset += len(data)
        return data.decode(errors="replace")

    def new_statements(self) -> list[str]:
        """SQL statements the runner's handlers sent since the last call."""
        if not self.statement_log.exists():
            return []
        with self.statement_log.open("rb") as fh:
            fh.seek(self._statement_offset)
            data = fh.read()
        complete = data[: data.rfind(b"\n") + 1]
        self._statement_offset += len(complete)
        return [json.loads(line)["sql"] for line in complete.decode().splitlines() if line.strip()]


def process_gone(pid: int | None) -> bool:
    if pid is None:
        return True
    try:
        return psutil.Process(pid).status() == psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        return True


def processes_using(path: Path) -> list[psutil.Process]:
    """Live processes whose command line or working directory is inside `path`."""
    found = []
    target = str(path.resolve())
    for proc in psutil.process_iter(["cmdline"]):
        with contextlib.suppress(psutil.Error, OSError):
            if proc.status() == psutil.STATUS_ZOMBIE:
                continue
            cmdline = " ".join(proc.info.get("cmdline") or [])
            if target in cmdline or str(Path(proc.cwd()).resolve()).startswith(target):
                found.append(proc)
    return found
