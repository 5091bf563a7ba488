"""The operations of the API contract (HTTP routes and direct-invoke actions), each with the state it needs.

`World` makes that state through the real services (start, worker with stand-in media, approval through
its handler) so it matches what production would have; raw SQL only where a step has no service yet.
`Operation.prepare(world)` returns a fresh event; calling it twice gives two independent requests (the
first warms the path, the second is measured).
"""

from __future__ import annotations

import itertools
import json
from collections.abc import Callable
from dataclasses import dataclass
from datetime import timedelta
from types import ModuleType
from typing import Any
from uuid import UUID

from genjobs import dependencies
from genjobs.data import jobs as job_data
from genjobs.data import personas as persona_data
from genjobs.db import Database
from genjobs.ports import utc_now
from genjobs.services import jobs, worker

from bench.harness import FastProvider, MemoryStore, NoopInvoker, call, is_missing, succeeded
from tests.support.events import http_event

HOT = 1
APPROVAL = 2
VIDEO_STATES = ("idle", "talking", "thinking")


class SetupFailed(Exception):
    """The state an operation needs could not be made (usually: a route it builds on is missing)."""


class World:
    """Merchants, personas and jobs in every state an operation may need, made through the services."""

    def __init__(self, db: Database, modules: dict[str, ModuleType], merchant: str = "bench-acme") -> None:
        self.db = db
        self.modules = modules
        self.merchant = merchant
        self.invoker = NoopInvoker()
        self.provider = FastProvider()
        self.store = MemoryStore()
        dependencies.override(invoker=self.invoker, provider=self.provider, store=self.store)
        self.limits = jobs.LimitSettings(default_hourly_limit=100_000_000, cooldown=timedelta(0),
                                               max_retries=3)
        self.worker_settings = worker.WorkerSettings()
        self._seq = itertools.count(1)
        db.execute("INSERT INTO merchants (id, hourly_generation_limit) VALUES (%s, 100000000) "
                   "ON CONFLICT (id) DO UPDATE SET hourly_generation_limit = 100000000", (merchant,))

    def unique(self, prefix: str) -> str:
        return f"{prefix}-{next(self._seq)}"

    # -- events -------------------------------------------------------------------------------------------

    def http(self, method: str, path: str, *, route: str | None = None, params: dict[str, str] | None = None,
             body: Any = None, query: dict[str, str] | None = None, headers: dict[str, str] | None = None,
             merchant: str | None = None) -> dict[str, Any]:
        return http_event(method, path, route=route, path_parameters=params, body=body, query=query,
                          headers=headers, merchant_id=merchant or self.merchant)

    # -- state ----------------------------------------------------------------------------------------------

    def persona(self, merchant: str | None = None) -> UUID:
        row = persona_data.insert_persona(self.db, merchant or self.merchant, {
            "name": self.unique("Pip"), "description": "A cheerful robot", "product_name": "SnackBot",
            "character_type": "robot"})
        return row.id

    def start(self, persona: UUID, *, job_type: str = "character_variations", merchant: str | None = None,
              states: list[str] | None = None) -> UUID:
        body: dict[str, Any] = {"variation_count": 3} if job_type == "character_variations" else {"states": states}
        started = jobs.start_job(
            self.db, self.invoker, merchant_id=merchant or self.merchant, persona_id=persona, job_type=job_type,
            body=body, variation_count=3 if job_type == "character_variations" else None,
            states=states if job_type == "state_videos" else None, prompt_variables={}, idempotency_key=None,
            limits=self.limits, clock=utc_now, worker_function="genjobs-generation")
        return started.job.id

    def queued_job(self, merchant: str | None = None) -> UUID:
        return self.start(self.persona(merchant), merchant=merchant)

    def running_job(self, merchant: str | None = None) -> tuple[UUID, int]:
        job_id = self.queued_job(merchant)
        claim = job_data.claim_job(self.db, job_id, utc_now(), timedelta(minutes=5))
        if claim is None:
            raise SetupFailed("a fresh job could not be claimed")
        return job_id, int(claim.attempt)

    def run(self, job_id: UUID) -> worker.RunOutcome:
        return worker.run_job(self.db, self.provider, self.store, job_id, settings=self.worker_settings,
                              clock=utc_now)

    def completed_variations(self, merchant: str | None = None) -> tuple[UUID, UUID]:
        """A persona whose variations job completed (pending approval): (persona, job)."""
        persona = self.persona(merchant)
        job_id = self.start(persona, merchant=merchant)
        outcome = self.run(job_id)
        if outcome.status != "completed":
            raise SetupFailed(f"the variations job ended {outcome.status}")
        return persona, job_id

    def variation_ids(self, job_id: UUID) -> list[UUID]:
        rows = self.db.fetch_all("SELECT id FROM character_variations WHERE job_id = %s ORDER BY variation_index",
                                 (job_id,))
        return [UUID(str(r["id"])) for r in rows]

    def active_persona(self, merchant: str | None = None) -> UUID:
        """Variations generated and the first one approved (through the approval handler)."""
        persona, job_id = self.completed_variations(merchant)
        variation = self.variation_ids(job_id)[0]
        event = self.http("POST", f"/personas/{persona}/approve-variation",
                          route="/personas/{persona_id}/approve-variation", params={"persona_id": str(persona)},
                          body={"variation_id": str(variation)}, merchant=merchant)
        response = call(self.modules["approval"], event)
        if is_missing(response) or not succeeded(response):
            raise SetupFailed("approval is not available, so no persona can become active")
        return persona

    def video_job(self, merchant: str | None = None, states: tuple[str, ...] = VIDEO_STATES) -> tuple[UUID, int]:
        """A state-videos job whose worker started its invocations (generating_videos): (job, attempt)."""
        persona = self.active_persona(merchant)
        job_id = self.start(persona, job_type="state_videos", merchant=merchant, states=list(states))
        outcome = self.run(job_id)
        if outcome.status != "generating_videos" or outcome.attempt is None:
            raise SetupFailed(f"the state-videos worker ended {outcome.status} ({outcome.error_code})")
        return job_id, outcome.attempt

    def s3_event(self, job_id: UUID, state: str) -> dict[str, Any]:
        key = f"jobs/{job_id}/{state}/inv{next(self._seq)}/output.mp4"
        return {"Records": [{
            "eventVersion": "2.1", "eventSource": "aws:s3", "awsRegion": "us-east-1",
            "eventTime": utc_now().isoformat(), "eventName": "ObjectCreated:Put",
            "s3": {"s3SchemaVersion": "1.0", "configurationId": "state-videos",
                   "bucket": {"name": self.store.bucket, "arn": f"arn:aws:s3:::{self.store.bucket}"},
                   "object": {"key": key, "size": 1048576, "eTag": "0123456789abcdef", "sequencer": "00"}},
        }]}


# -- the catalogue ----------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Operation:
    function: str
    name: str
    prepare: Callable[[World], dict[str, Any]]
    target: int | None = HOT
    note: str = ""


def _persona_route(w: World, method: str, suffix: str, persona: UUID, body: Any = None) -> dict[str, Any]:
    return w.http(method, f"/personas/{persona}{suffix}", route="/personas/{persona_id}" + suffix,
                  params={"persona_id": str(persona)}, body=body)


def _job_route(w: World, method: str, suffix: str, job_id: UUID, *, query: dict[str, str] | None = None,
               headers: dict[str, str] | None = None) -> dict[str, Any]:
    return w.http(method, f"/jobs/{job_id}{suffix}", route="/jobs/{job_id}" + suffix,
                  params={"job_id": str(job_id)}, query=query, headers=headers)


def _jobs_page_two(w: World) -> dict[str, Any]:
    merchant = w.unique("bench-lister")
    w.db.execute("INSERT INTO merchants (id, hourly_generation_limit) VALUES (%s, 100000000)", (merchant,))
    for _ in range(25):
        w.queued_job(merchant)
    first = call(w.modules["progress"], w.http("GET", "/jobs", query={"limit": "20"}, merchant=merchant))
    if is_missing(first) or not succeeded(first):
        return w.http("GET", "/jobs", query={"limit": "20"}, merchant=merchant)
    cursor = json.loads(first["body"]).get("next_cursor") or ""
    return w.http("GET", "/jobs", query={"limit": "20", "cursor": cursor}, merchant=merchant)


def _direct(action: str, **fields: Any) -> dict[str, Any]:
    return {"action": action, **{k: str(v) if isinstance(v, UUID) else v for k, v in fields.items()}}


def _running(w: World, action: str, **extra: Any) -> dict[str, Any]:
    job_id, attempt = w.running_job()
    return _direct(action, job_id=job_id, attempt=attempt, merchant_id=w.merchant, **extra)


def _add_state(w: World) -> dict[str, Any]:
    job_id, attempt = w.video_job()
    return _direct("add_generated_state", job_id=job_id, attempt=attempt, merchant_id=w.merchant, state="idle",
                   video_url="https://media.bench.invalid/idle.mp4")


def _approve_direct(w: World) -> dict[str, Any]:
    persona, job_id = w.completed_variations()
    return _direct("approve_variation", merchant_id=w.merchant, persona_id=persona,
                   variation_id=w.variation_ids(job_id)[1])


def _approve_http(w: World) -> dict[str, Any]:
    persona, job_id = w.completed_variations()
    return _persona_route(w, "POST", "/approve-variation", persona, {"variation_id": str(w.variation_ids(job_id)[0])})


def _variations(w: World) -> dict[str, Any]:
    persona, _ = w.completed_variations()
    return _persona_route(w, "GET", "/variations", persona)


def _s3_completion(w: World) -> dict[str, Any]:
    job_id, _ = w.video_job()
    return w.s3_event(job_id, "idle")


def _s3_last_state(w: World) -> dict[str, Any]:
    job_id, _ = w.video_job(states=("idle",))
    return w.s3_event(job_id, "idle")


OPERATIONS: tuple[Operation, ...] = (
    # generation: personas and job starts
    Operation("generation", "POST /personas", lambda w: w.http("POST", "/personas", body={"name": "Pip"})),
    Operation("generation", "GET /personas/{persona_id}", lambda w: _persona_route(w, "GET", "", w.persona())),
    Operation("generation", "DELETE /personas/{persona_id}", lambda w: _persona_route(w, "DELETE", "", w.persona())),
    Operation("generation", "POST /personas/{persona_id}/generations",
              lambda w: _persona_route(w, "POST", "/generations", w.persona(), {"variation_count": 3})),
    Operation("generation", "POST /personas/{persona_id}/state-videos",
              lambda w: _persona_route(w, "POST", "/state-videos", w.active_persona(), {"states": list(VIDEO_STATES)})),
    Operation("worker", "invoke run_job (3 variations)", lambda w: _direct("run_job", job_id=w.queued_job()),
              target=None, note="claim + 1 per image + complete"),
    Operation("worker", "invoke run_job (3 state videos)",
              lambda w: _direct("run_job", job_id=w.start(w.active_persona(), job_type="state_videos",
                                                          states=list(VIDEO_STATES))),
              target=None, note="claim + phase + 2 per video start"),
    # approval
    Operation("approval", "GET /personas/{persona_id}/variations", _variations),
    Operation("approval", "POST /personas/{persona_id}/approve-variation", _approve_http, target=APPROVAL),
    Operation("approval", "invoke approve_variation", _approve_direct, target=APPROVAL),
    # progress: reads, lists, timeline, cancel
    Operation("progress", "GET /jobs/{job_id}", lambda w: _job_route(w, "GET", "", w.queued_job())),
    Operation("progress", "GET /jobs/{job_id}?wait=5 (changed)",
              lambda w: _job_route(w, "GET", "", w.queued_job(), query={"wait": "5"}, headers={"If-None-Match": '"0"'}),
              note="ETag already stale: answers at once"),
    Operation("progress", "GET /jobs?limit=20", lambda w: w.http("GET", "/jobs", query={"limit": "20"})),
    Operation("progress", "GET /jobs?limit=20&cursor= (page 2)", _jobs_page_two),
    Operation("progress", "GET /jobs?status=queued&job_type=…",
              lambda w: w.http("GET", "/jobs", query={"status": "queued", "job_type": "character_variations"})),
    Operation("progress", "GET /jobs/{job_id}/events", lambda w: _job_route(w, "GET", "/events", w.queued_job())),
    Operation("progress", "POST /jobs/{job_id}/cancel", lambda w: _job_route(w, "POST", "/cancel", w.queued_job())),
    Operation("progress", "GET /health", lambda w: w.http("GET", "/health"), note="no auth"),
    # progress: direct-invoke commands and S3 completion
    Operation("progress", "invoke update_current_step", lambda w: _running(w, "update_current_step", step="rendering")),
    Operation("progress", "invoke update_progress", lambda w: _running(w, "update_progress", progress=40, step="half")),
    Operation("progress", "invoke add_generated_state", _add_state),
    Operation("progress", "invoke mark_completed", lambda w: _running(w, "mark_completed")),
    Operation("progress", "invoke mark_failed",
              lambda w: _running(w, "mark_failed", error_code="BENCH_FAILURE", error_message="benchmark")),
    Operation("progress", "invoke get_job_progress",
              lambda w: _direct("get_job_progress", job_id=w.queued_job(), merchant_id=w.merchant)),
    Operation("progress", "S3 ObjectCreated (state video)", _s3_completion),
    Operation("progress", "S3 ObjectCreated (last state: completes)", _s3_last_state),
    # limits
    Operation("limits", "GET /usage", lambda w: w.http("GET", "/usage")),
    Operation("limits", "invoke check_rate_limit", lambda w: _direct("check_rate_limit", merchant_id=w.merchant)),
    Operation("limits", "invoke check_regeneration_cooldown",
              lambda w: _direct("check_regeneration_cooldown", merchant_id=w.merchant, persona_id=w.persona())),
    Operation("limits", "invoke record_usage",
              lambda w: _direct("record_usage", merchant_id=w.merchant, usage_key=w.unique("bench-usage"),
                                amount_usd="0.04", model_id="amazon.nova-canvas-v1:0")),
    # operations
    Operation("maintenance", "invoke sweep (nothing due)", lambda w: _direct("sweep"), target=None,
              note="rescue + redispatch + 2 retention sweeps"),
    Operation("migrate", "invoke pending", lambda w: _direct("pending"), target=None),
)
