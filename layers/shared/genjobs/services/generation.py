"""Starting generation jobs: every limit checked exactly, in one round trip, then the worker invoked."""

from __future__ import annotations

import hashlib
import json
import logging
from dataclasses import dataclass
from datetime import timedelta
from typing import Any
from uuid import UUID

from genjobs.clock import Clock
from genjobs.data import jobs as job_data
from genjobs.db import Database
from genjobs.errors import (
    BadRequest,
    BudgetExceeded,
    Conflict,
    CooldownActive,
    DatabaseUnavailable,
    NotFound,
    RateLimited,
    ValidationFailed,
)
from genjobs.invoke import FunctionInvoker, InvokeFailed
from genjobs.models.jobs import Job
from genjobs.services.prompts import BUILTIN_TEMPLATES

logger = logging.getLogger("genjobs.generation")

MAX_IDEMPOTENCY_KEY_LENGTH = 255


@dataclass(frozen=True)
class LimitSettings:
    default_hourly_limit: int
    cooldown: timedelta
    max_retries: int


@dataclass(frozen=True)
class StartedJob:
    job: Job
    replayed: bool
    dispatched: bool


def validate_idempotency_key(key: str | None) -> str | None:
    if key is None:
        return None
    key = key.strip()
    if not key or len(key) > MAX_IDEMPOTENCY_KEY_LENGTH or not key.isprintable():
        raise BadRequest(f"Idempotency-Key must be 1-{MAX_IDEMPOTENCY_KEY_LENGTH} printable characters.")
    return key


def request_fingerprint(job_type: str, persona_id: UUID, body: dict[str, Any]) -> str:
    canonical = json.dumps({"job_type": job_type, "persona_id": str(persona_id), "body": body},
                           sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(canonical.encode()).hexdigest()


def _raise_for_outcome(outcome: str, result: dict[str, Any], persona_id: UUID) -> None:
    if outcome == "persona_not_found":
        raise NotFound("Persona not found.", details={"persona_id": str(persona_id)})
    if outcome == "persona_not_active":
        raise Conflict("State videos need an active persona: approve a variation first.",
                       details={"persona_status": result.get("persona_status")})
    if outcome == "invalid_variables":
        unknown, missing = result.get("unknown") or [], result.get("missing") or []
        parts = ([f"unknown: {', '.join(unknown)}"] if unknown else []) + \
                ([f"missing: {', '.join(missing)}"] if missing else [])
        raise ValidationFailed(f"prompt_variables do not match the template ({'; '.join(parts)}).",
                               details={"unknown": unknown, "missing": missing, "declared": result.get("declared")})
    if outcome == "persona_busy":
        raise Conflict("The persona already has an active job.",
                       details={"active_job_id": result.get("active_job_id")})
    if outcome == "idempotency_conflict":
        raise Conflict("This Idempotency-Key was already used with a different request.",
                       details={"job_id": result.get("job_id")})
    if outcome == "rate_limited":
        raise RateLimited(
            f"Hourly generation limit of {result['limit']} reached.",
            retry_after_seconds=int(result["retry_after_seconds"]),
            details={"limit": result["limit"], "used": result["used"],
                     "window_frees_at": result.get("window_frees_at")},
        )
    if outcome == "cooldown_active":
        raise CooldownActive(
            "The persona's variations were generated recently; regeneration is not available yet.",
            retry_after_seconds=int(result["retry_after_seconds"]),
            details={"available_at": result.get("available_at")},
        )
    if outcome == "budget_exceeded":
        raise BudgetExceeded(
            "This job would exceed the merchant's monthly budget.",
            details={k: result.get(k) for k in ("budget_usd", "spent_usd", "reserved_usd", "estimated_cost_usd")},
        )
    if outcome == "no_model":
        raise DatabaseUnavailable("No enabled model is configured for this job type.", retry_after_seconds=60)
    raise RuntimeError(f"unexpected start outcome {outcome!r}")


def start_job(
    db: Database,
    invoker: FunctionInvoker,
    *,
    merchant_id: str,
    persona_id: UUID,
    job_type: str,
    body: dict[str, Any],
    variation_count: int | None,
    states: list[str] | None,
    prompt_variables: dict[str, str],
    idempotency_key: str | None,
    limits: LimitSettings,
    clock: Clock,
    worker_function: str,
) -> StartedJob:
    """Check idempotency, persona, variables, the active-job rule, rate limit, cooldown and budget, insert
    the queued job (one round trip), then hand it to the worker with an async invoke.

    A failed invoke does not fail the request: the job stays queued and the maintenance sweep dispatches it.
    """
    key = validate_idempotency_key(idempotency_key)
    builtin = BUILTIN_TEMPLATES[job_type]
    result = job_data.start_job(
        db,
        merchant_id=merchant_id,
        persona_id=persona_id,
        job_type=job_type,
        variation_count=variation_count,
        states=states,
        prompt_variables=prompt_variables,
        idempotency_key=key,
        request_hash=request_fingerprint(job_type, persona_id, body),
        default_hourly_limit=limits.default_hourly_limit,
        cooldown=limits.cooldown,
        now=clock(),
        max_retries=limits.max_retries,
        builtin_variables=list(builtin.variables),
        builtin_defaults=dict(builtin.defaults),
    )
    outcome = str(result["outcome"])
    if outcome not in ("created", "replayed"):
        _raise_for_outcome(outcome, result, persona_id)
    job = Job.from_row(result["job"])
    if outcome == "replayed":
        return StartedJob(job=job, replayed=True, dispatched=False)
    dispatched = dispatch_job(db, invoker, job.id, worker_function)
    return StartedJob(job=job, replayed=False, dispatched=dispatched)


def dispatch_job(db: Database, invoker: FunctionInvoker, job_id: UUID, worker_function: str) -> bool:
    try:
        invoker.invoke_async(worker_function, {"action": "run_job", "job_id": str(job_id)})
    except InvokeFailed as exc:
        logger.warning("dispatch of job %s failed; it stays queued for re-dispatch: %s", job_id, exc)
        job_data.mark_dispatch_failed(db, job_id, str(exc))
        return False
    return True
