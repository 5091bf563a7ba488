"""The clients of `make load`: merchants driving personas end to end over HTTP, readers paging through jobs,
and external workers that drive state-video jobs with the progress function's direct invocations.

Every request has a timeout and every loop stops at the deadline (a flow in progress is abandoned there).
Each request is recorded with its route, its status and whether that status was one the step expects;
anything else (a 5xx, an unexpected 4xx, a timeout, a lost connection) is an error. What a client sees that
contradicts the rules (a replay answering another job, a job that did not complete, a state missing from
the persona) is recorded as a violation.
"""

from __future__ import annotations

import http.client
import json
import random
import threading
import time
import uuid
from collections import Counter, defaultdict
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlsplit

REQUEST_TIMEOUT_SECONDS = 30.0
LONG_POLL_SECONDS = 5
JOB_DEADLINE_SECONDS = 60.0
STATES = ("idle", "talking", "thinking", "waving", "nodding")
TERMINAL = ("completed", "failed", "canceled")


@dataclass
class Stats:
    """Thread-safe record of every request (HTTP and direct invoke)."""

    latencies: defaultdict[str, list[float]] = field(default_factory=lambda: defaultdict(list))
    statuses: Counter[tuple[str, str]] = field(default_factory=Counter)
    errors: Counter[tuple[str, str]] = field(default_factory=Counter)
    error_samples: list[str] = field(default_factory=list)
    violations: list[str] = field(default_factory=list)
    counters: Counter[str] = field(default_factory=Counter)
    lock: threading.Lock = field(default_factory=threading.Lock)
    # faults are injected (tests/load/faults.py): an answer that says "the database is away, retry" (HTTP 503
    # with Retry-After, a direct invoke's SERVICE_UNAVAILABLE) is expected; the flow stops there
    faults: bool = False

    def record(self, route: str, status: str, seconds: float, *, expected: bool, detail: str = "") -> None:
        with self.lock:
            self.latencies[route].append(seconds)
            self.statuses[(route, status)] += 1
            if not expected:
                self.errors[(route, status)] += 1
                if len(self.error_samples) < 20:
                    self.error_samples.append(f"{route} -> {status}: {detail[:300]}")

    def violation(self, message: str) -> None:
        with self.lock:
            self.violations.append(message)

    def count(self, name: str, n: int = 1) -> None:
        with self.lock:
            self.counters[name] += n


class Unexpected(Exception):
    """A step got an answer it cannot go on from (already recorded as an error)."""


@dataclass
class Reply:
    status: int
    headers: dict[str, str]
    body: Any


class HttpClient:
    """One keep-alive connection per client thread, reconnected after a failure."""

    def __init__(self, base_url: str, token: str, stats: Stats) -> None:
        parts = urlsplit(base_url)
        self.host, self.port = parts.hostname or "127.0.0.1", parts.port or 80
        self.token = token
        self.stats = stats
        self._conn: http.client.HTTPConnection | None = None

    def close(self) -> None:
        if self._conn is not None:
            self._conn.close()
            self._conn = None

    def call(self, method: str, path: str, route: str, *, body: Any = None, expect: Iterable[int] = (200,),
             headers: dict[str, str] | None = None, timeout: float = REQUEST_TIMEOUT_SECONDS) -> Reply:
        """The reply; an unexpected status, a timeout or a connection failure is recorded and raises
        Unexpected."""
        all_headers = {"Authorization": f"Bearer {self.token}", **(headers or {})}
        payload = None
        if body is not None:
            payload = json.dumps(body).encode()
            all_headers["Content-Type"] = "application/json"
        started = time.perf_counter()
        try:
            if self._conn is None:
                self._conn = http.client.HTTPConnection(self.host, self.port, timeout=timeout)
            self._conn.timeout = timeout
            if self._conn.sock is not None:
                self._conn.sock.settimeout(timeout)
            self._conn.request(method, path, body=payload, headers=all_headers)
            response = self._conn.getresponse()
            data = response.read()
        except (OSError, http.client.HTTPException) as exc:
            self.close()
            self.stats.record(route, type(exc).__name__, time.perf_counter() - started, expected=False,
                              detail=f"{method} {path}: {exc!r}")
            raise Unexpected(route) from exc
        elapsed = time.perf_counter() - started
        if response.getheader("Connection", "").lower() == "close":
            self.close()
        try:
            parsed = json.loads(data) if data else None
        except ValueError:
            parsed = data
        ok = response.status in tuple(expect)
        if not ok and self.stats.faults and response.status == 503 and response.getheader("Retry-After"):
            self.stats.record(route, "503", elapsed, expected=True)
            self.stats.count("503 with Retry-After (database away)")
            raise Unexpected(route)
        self.stats.record(route, str(response.status), elapsed, expected=ok, detail=f"{method} {path}: {data!r}")
        if not ok:
            raise Unexpected(route)
        return Reply(response.status, {k.lower(): v for k, v in response.getheaders()}, parsed)


@dataclass
class Context:
    base_url: str
    deadline: float
    stats: Stats
    token_for: Callable[[str], str]
    rng: random.Random

    def time_left(self) -> float:
        return self.deadline - time.monotonic()


def wait_for_job(ctx: Context, client: HttpClient, job_id: str) -> dict[str, Any] | None:
    """Long-poll (If-None-Match, ?wait=5) until the job finishes; None when the run's deadline came first."""
    version: int | None = None
    give_up = time.monotonic() + JOB_DEADLINE_SECONDS
    while ctx.time_left() > 0:
        wait = max(0, min(LONG_POLL_SECONDS, int(ctx.time_left())))
        headers = {"If-None-Match": f'"{version}"'} if version is not None else None
        job: dict[str, Any] = client.call("GET", f"/jobs/{job_id}?wait={wait}", "GET /jobs/{job_id}?wait",
                                          headers=headers, timeout=wait + REQUEST_TIMEOUT_SECONDS).body
        if job["status"] in TERMINAL:
            return job
        version = int(job["version"])
        if time.monotonic() > give_up:
            ctx.stats.violation(f"job {job_id} still {job['status']} after {JOB_DEADLINE_SECONDS:.0f} s")
            return None
    return None


def approved_persona(ctx: Context, client: HttpClient) -> tuple[str, str] | None:
    """persona → variations (real worker) → approval: (persona id, approved variation id), or None at the
    deadline."""
    persona = client.call("POST", "/personas", "POST /personas", expect=(201,),
                          body={"name": f"Load {uuid.uuid4().hex[:8]}", "product_name": "Load Test",
                                "character_type": ctx.rng.choice(["robot", "chef", "cat"])}).body
    persona_id = str(persona["id"])
    count = ctx.rng.randint(1, 4)
    key = f"load-{uuid.uuid4()}"
    path = f"/personas/{persona_id}/generations"
    started = client.call("POST", path, "POST /personas/{persona_id}/generations", body={"variation_count": count},
                          headers={"Idempotency-Key": key}, expect=(202,)).body
    if ctx.rng.random() < 0.3:
        replay = client.call("POST", path, "POST /personas/{persona_id}/generations", body={"variation_count": count},
                             headers={"Idempotency-Key": key}, expect=(202,))
        ctx.stats.count("idempotent replays")
        if replay.body["id"] != started["id"] or replay.headers.get("idempotent-replayed") != "true":
            ctx.stats.violation(f"replay of {key} answered job {replay.body['id']}, not {started['id']}")
    job = wait_for_job(ctx, client, str(started["id"]))
    if job is None:
        return None
    if job["status"] != "completed" or len(job["variation_urls"]) != count:
        ctx.stats.violation(f"variations job {job['id']}: {job['status']}, {len(job['variation_urls'])}/{count}")
        return None
    items = client.call("GET", f"/personas/{persona_id}/variations", "GET /personas/{persona_id}/variations"
                        ).body["items"]
    if len(items) != count:
        ctx.stats.violation(f"persona {persona_id} lists {len(items)} variations, not {count}")
        return None
    choices = [str(v["id"]) for v in items]
    if len(choices) > 1 and ctx.rng.random() < 0.2:  # change one's mind once: approval moves
        client.call("POST", f"/personas/{persona_id}/approve-variation",
                    "POST /personas/{persona_id}/approve-variation", body={"variation_id": choices[-1]})
    chosen = ctx.rng.choice(choices)
    persona = client.call("POST", f"/personas/{persona_id}/approve-variation",
                          "POST /personas/{persona_id}/approve-variation", body={"variation_id": chosen}).body
    if persona["status"] != "active" or persona["approved_variation_id"] != chosen:
        ctx.stats.violation(f"approval of {chosen} left persona {persona_id} {persona['status']}")
        return None
    return persona_id, chosen


def check_video_states(ctx: Context, client: HttpClient, persona_id: str, states: list[str],
                       urls: dict[str, str] | None = None) -> None:
    persona = client.call("GET", f"/personas/{persona_id}", "GET /personas/{persona_id}").body
    missing = [s for s in states if s not in persona["video_states"]]
    wrong = [s for s, url in (urls or {}).items() if persona["video_states"].get(s) != url]
    if missing or wrong:
        ctx.stats.violation(f"persona {persona_id}: states {missing} missing, {wrong} with another URL")
    else:
        ctx.stats.count("state appends verified", len(states))


def merchant_flow(ctx: Context, client: HttpClient) -> None:
    """One persona from creation to its state videos, over HTTP; sometimes a canceled start on the side."""
    if ctx.rng.random() < 0.15:
        cancel_flow(ctx, client)
    approved = approved_persona(ctx, client)
    if approved is None:
        return
    persona_id, _ = approved
    states = ctx.rng.sample(STATES, ctx.rng.randint(1, 4))
    started = client.call("POST", f"/personas/{persona_id}/state-videos", "POST /personas/{persona_id}/state-videos",
                          body={"states": states}, expect=(202,)).body
    job = wait_for_job(ctx, client, str(started["id"]))
    if job is None:
        return
    if job["status"] != "completed" or sorted(job["states_generated"]) != sorted(states):
        ctx.stats.violation(f"state-videos job {job['id']}: {job['status']}, {job['states_generated']} of {states}")
        return
    ctx.stats.count("state-videos jobs verified")
    check_video_states(ctx, client, persona_id, states)
    client.call("GET", f"/jobs/{job['id']}/events", "GET /jobs/{job_id}/events")


def cancel_flow(ctx: Context, client: HttpClient) -> None:
    persona = client.call("POST", "/personas", "POST /personas", body={"name": "Canceled"}, expect=(201,)).body
    job = client.call("POST", f"/personas/{persona['id']}/generations", "POST /personas/{persona_id}/generations",
                      body={"variation_count": 1}, expect=(202,)).body
    # 409: the worker finished it first
    reply = client.call("POST", f"/jobs/{job['id']}/cancel", "POST /jobs/{job_id}/cancel", expect=(200, 409))
    ctx.stats.count("cancel requests")
    final = wait_for_job(ctx, client, str(job["id"]))
    if final is not None and reply.status == 200 and final["status"] != "canceled":
        ctx.stats.violation(f"job {job['id']} answered canceled but ended {final['status']}")


def reader_flow(ctx: Context, clients: list[HttpClient]) -> None:
    """Pages of jobs (cursor), usage, a job, its timeline and its persona, for each merchant in turn."""
    client = ctx.rng.choice(clients)
    cursor: str | None = None
    job_ids: list[tuple[str, str]] = []
    for _ in range(ctx.rng.randint(1, 3)):
        query = f"?limit={ctx.rng.choice([5, 20, 50])}" + (f"&cursor={cursor}" if cursor else "")
        page = client.call("GET", f"/jobs{query}", "GET /jobs").body
        job_ids += [(str(j["id"]), str(j["persona_id"])) for j in page["items"]]
        cursor = page["next_cursor"]
        if not cursor:
            break
    client.call("GET", "/usage", "GET /usage")
    if job_ids:
        job_id, persona_id = ctx.rng.choice(job_ids)
        client.call("GET", f"/jobs/{job_id}", "GET /jobs/{job_id}")
        client.call("GET", f"/jobs/{job_id}/events", "GET /jobs/{job_id}/events")
        client.call("GET", f"/personas/{persona_id}", "GET /personas/{persona_id}", expect=(200, 404))


class ExternalWorker:
    """Drives state-video jobs of its own through the progress function's direct invocations, in this process
    against the runner's database (the runner does not expose direct invokes over HTTP).

    The job is started through the service the HTTP route calls, with an invoker that dispatches nothing
    (as if the invoke was lost), and claimed with the worker's own claim (a new attempt and a lease), so
    the runner's worker never touches it (its re-dispatch sweep waits REDISPATCH_AFTER_SECONDS, far longer
    than the job stays queued here). From the claim on, every write is a progress command:
    get_job_progress, update_current_step, update_progress, add_generated_state (each sent twice: the
    duplicate must change nothing), a write of a stale attempt (refused), mark_completed (twice)."""

    def __init__(self, ctx: Context, merchant_id: str, client: HttpClient) -> None:
        from genjobs import dependencies
        from genjobs.ports import utc_now
        from genjobs.services import jobs
        from genjobs.settings import get_settings

        import functions.progress.app as progress_app

        self.ctx, self.merchant_id, self.client = ctx, merchant_id, client
        self._progress = progress_app
        self._db = dependencies.get().db
        self._clock = utc_now
        config = get_settings()
        self._lease = config.job_lease
        self._limits = jobs.LimitSettings(default_hourly_limit=config.hourly_generation_limit,
                                          cooldown=config.regeneration_cooldown, max_retries=config.max_retries)

    def invoke(self, action: str, expect: tuple[str, ...] = ("ok",), **payload: Any) -> dict[str, Any]:
        from tests.support.events import invoke

        event = json.loads(json.dumps({"action": action, "merchant_id": self.merchant_id, **payload}))
        route = f"invoke progress {action}"
        started = time.perf_counter()
        try:
            answer: dict[str, Any] = json.loads(json.dumps(invoke(self._progress, event)))
        except Exception as exc:  # a handler must answer an envelope, never raise
            self.ctx.stats.record(route, type(exc).__name__, time.perf_counter() - started, expected=False,
                                  detail=repr(exc))
            raise Unexpected(route) from exc
        status = "ok" if answer.get("ok") else str((answer.get("error") or {}).get("code"))
        if status == "SERVICE_UNAVAILABLE" and self.ctx.stats.faults and status not in expect:
            self.ctx.stats.record(route, status, time.perf_counter() - started, expected=True)
            self.ctx.stats.count("SERVICE_UNAVAILABLE invokes (database away)")
            raise Unexpected(route)
        self.ctx.stats.record(route, status, time.perf_counter() - started, expected=status in expect,
                              detail=json.dumps(answer)[:300])
        if status not in expect:
            raise Unexpected(route)
        return answer

    def flow(self) -> None:
        from genjobs.data.jobs import claim_job
        from genjobs.services import jobs

        approved = approved_persona(self.ctx, self.client)
        if approved is None or self.ctx.time_left() <= 0:
            return
        persona_id = approved[0]
        states = self.ctx.rng.sample(STATES, self.ctx.rng.randint(1, 5))
        started = time.perf_counter()
        job = jobs.start_job(
            self._db, _NoDispatch(), merchant_id=self.merchant_id, persona_id=uuid.UUID(persona_id),
            job_type="state_videos", body={"states": states}, variation_count=None, states=states,
            prompt_variables={}, idempotency_key=None, limits=self._limits, clock=self._clock,
            worker_function="genjobs-generation").job
        # the lease of the runner's workers: a flow cut off by an outage leaves a job the rescue sweep finds
        claim = claim_job(self._db, job.id, self._clock(), self._lease)
        self.ctx.stats.record("external start+claim", "ok" if claim else "not claimed", time.perf_counter() - started,
                              expected=claim is not None)
        if claim is None:
            return
        job_id, attempt = str(job.id), int(claim.attempt)
        progress = self.invoke("get_job_progress", job_id=job_id)["result"]
        if progress["status"] != "processing" or progress["attempt"] != attempt:
            self.ctx.stats.violation(f"external job {job_id} after claim: {progress}")
        self.invoke("update_current_step", job_id=job_id, attempt=attempt, step="external_rendering")
        self.invoke("update_current_step", ("STALE_ATTEMPT",), job_id=job_id, attempt=attempt + 1, step="stale")
        urls = {s: f"https://cdn.example.test/external/{job_id}/{s}.mp4" for s in states}
        for index, state in enumerate(states):
            self.invoke("update_progress", job_id=job_id, attempt=attempt, progress=int(100 * index / len(states)))
            first = self.invoke("add_generated_state", job_id=job_id, attempt=attempt, state=state,
                                video_url=urls[state])["result"]
            again = self.invoke("add_generated_state", job_id=job_id, attempt=attempt, state=state,
                                video_url=urls[state])["result"]
            if not first["changed"] or again["changed"] or again["states_generated"].count(state) != 1:
                self.ctx.stats.violation(f"external job {job_id}: appending {state} twice gave {first} / {again}")
        done = self.invoke("mark_completed", job_id=job_id, attempt=attempt)["result"]
        again = self.invoke("mark_completed", job_id=job_id, attempt=attempt)["result"]
        if done["status"] != "completed" or again["changed"] or sorted(done["states_generated"]) != sorted(states):
            self.ctx.stats.violation(f"external job {job_id}: completion {done} / {again}")
            return
        self.ctx.stats.count("external jobs completed")
        seen = self.client.call("GET", f"/jobs/{job_id}", "GET /jobs/{job_id}").body
        if seen["status"] != "completed" or seen["cost_usd"] <= 0:
            self.ctx.stats.violation(f"external job {job_id} over HTTP: {seen['status']}, cost {seen['cost_usd']}")
        check_video_states(self.ctx, self.client, persona_id, states, urls)


class _NoDispatch:
    """An invoker that dispatches nothing: the external worker takes the job itself."""

    def invoke_async(self, function_name: str, payload: Any) -> None:
        return None

    def invoke_sync(self, function_name: str, payload: Any) -> Any:
        raise AssertionError("not used")
