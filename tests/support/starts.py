"""Starting jobs through the real service (`genjobs.services.jobs.start_job`) with the defaults the job-rule
tests assume: a bare persona (no product or character fields) and 10 starts an hour."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from genjobs.db import Database
from genjobs.services import jobs

from tests.support.fakes import FrozenClock, RecordingInvoker

LIMITS = jobs.LimitSettings(default_hourly_limit=10, cooldown=timedelta(hours=24), max_retries=3)


def new_persona(db: Database, merchant_id: str, status: str = "draft") -> Any:
    """A persona named Pip in `status` (its merchant created when missing); returns its id."""
    db.execute("INSERT INTO merchants (id) VALUES (%s) ON CONFLICT DO NOTHING", (merchant_id,))
    return db.fetch_value("INSERT INTO personas (merchant_id, name, status) VALUES (%s, 'Pip', %s) RETURNING id",
                          (merchant_id, status))


def start(db: Database, merchant_id: str, persona_id: Any, *, clock: FrozenClock | None = None,
          invoker: RecordingInvoker | None = None, key: str | None = None, count: int = 3,
          variables: dict[str, str] | None = None, limits: jobs.LimitSettings = LIMITS,
          job_type: str = "character_variations", states: list[str] | None = None,
          model: str | None = None) -> jobs.StartedJob:
    """Start a job the way the generation function does (a RecordingInvoker dispatches the worker)."""
    body: dict[str, Any] = {"variation_count": count, "prompt_variables": variables or {}}
    return jobs.start_job(
        db, invoker or RecordingInvoker(), merchant_id=merchant_id, persona_id=persona_id, job_type=job_type,
        body=body if job_type == "character_variations" else {"states": states},
        variation_count=count if job_type == "character_variations" else None, states=states,
        prompt_variables=variables or {}, idempotency_key=key, limits=limits, clock=clock or FrozenClock(),
        worker_function="genjobs-generation", model_id=model)
