"""The outcomes of the database functions (sql/013) that refuse a request, decoded in one table.

Every database function answers `{"outcome": ..., ...}`; the outcomes below are refusals and become the
domain error that says why. Success outcomes (`created`, `replayed`, `approved`, `unchanged`, `completed`,
`recorded`, ...) are read by the service that called the function.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from genjobs.data.answers import Outcome
from genjobs.errors import (
    BudgetExceeded,
    Conflict,
    CooldownActive,
    GenjobsError,
    IllegalTransition,
    NoModelConfigured,
    NotFound,
    RateLimited,
    StaleAttempt,
    ValidationFailed,
)

Context = dict[str, Any]


def _invalid_variables(r: Outcome, _: Context) -> GenjobsError:
    unknown, missing = r.get("unknown") or [], r.get("missing") or []
    parts = ([f"unknown: {', '.join(unknown)}"] if unknown else []) + \
            ([f"missing: {', '.join(missing)}"] if missing else [])
    return ValidationFailed(f"prompt_variables do not match the template ({'; '.join(parts)}).",
                            details={"unknown": unknown, "missing": missing, "declared": r.get("declared")})


def _stale(r: Outcome, c: Context) -> GenjobsError:
    return StaleAttempt(
        f"Attempt {c.get('attempt')} is no longer the job's current attempt.",
        details={"job_id": str(c.get("job_id")), "attempt": c.get("attempt"),
                 "current_attempt": r.get_before("attempt"), "current_status": r.get_before("status")})


def _not_running(r: Outcome, c: Context) -> GenjobsError:
    return Conflict(f"The job is {r.get_before('status')}: it is not running, so it takes no progress updates.",
                    details={"job_id": str(c.get("job_id")), "current_status": r.get_before("status")})


_MODEL_REASONS = {"unknown": "is not a configured model", "disabled": "is not enabled",
                  "wrong_kind": "is not a model of this kind"}


def _model_not_allowed(r: Outcome, _: Context) -> GenjobsError:
    allowed = list(r.get("allowed") or [])
    return ValidationFailed(
        f"Model {r.get('model')!r} {_MODEL_REASONS.get(str(r.get('reason')), 'cannot be used')}; "
        f"{r.get('kind')} models you can use: {', '.join(allowed) or 'none'}.",
        details={"model": r.get("model"), "reason": r.get("reason"), "kind": r.get("kind"), "allowed": allowed})


def _model_eol(r: Outcome, _: Context) -> GenjobsError:
    allowed = list(r.get("allowed") or [])
    return ValidationFailed(
        f"Model {r.get('model')!r} has reached its end of life on Amazon Bedrock; "
        f"{r.get('kind')} models you can use: {', '.join(allowed) or 'none'}.",
        details={"model": r.get("model"), "reason": "eol", "eol_at": r.get("eol_at"), "kind": r.get("kind"),
                 "allowed": allowed})


REFUSALS: dict[str, Callable[[Outcome, Context], GenjobsError]] = {
    # starts (genjobs_start_job_v4) and operator retries (genjobs_retry_job_v1)
    "model_not_allowed": _model_not_allowed,
    # operators' model changes (genjobs_update_model_v1)
    "model_not_found": lambda r, c: NotFound("Model not found.", details={"model_id": c.get("model_id")}),
    "model_not_usable": lambda r, c: Conflict(
        "Only an enabled model that is not past its end of life can be its kind's default.",
        details={"model_id": c.get("model_id"), "enabled": r.get("enabled"), "lifecycle": r.get("lifecycle")}),
    "default_not_disableable": lambda r, c: Conflict(
        "The default model of its kind cannot be disabled: make another model the default first.",
        details={"model_id": c.get("model_id")}),
    "model_eol": _model_eol,
    "persona_not_found": lambda r, c: NotFound("Persona not found.", details={"persona_id": str(c.get("persona_id"))}),
    "persona_not_active": lambda r, _: Conflict("State videos need an active persona: approve a variation first.",
                                                details={"persona_status": r.get("persona_status")}),
    "invalid_variables": _invalid_variables,
    "persona_busy": lambda r, _: Conflict("The persona already has an active job.",
                                          details={"active_job_id": r.get("active_job_id")}),
    # deletes (genjobs_delete_persona_v1)
    "persona_has_active_job": lambda r, _: Conflict(
        "The persona has an active job; cancel it or wait for it to finish before deleting.",
        details={"active_job_id": r.get("active_job_id")}),
    "idempotency_conflict": lambda r, _: Conflict("This Idempotency-Key was already used with a different request.",
                                                  details={"job_id": r.get("job_id")}),
    # persona creates (genjobs_create_persona_v1)
    "persona_idempotency_conflict": lambda r, _: Conflict(
        "This Idempotency-Key was already used with a different request.", details={"persona_id": r.get("persona_id")}),
    # operator writes (sql/061)
    "not_retryable": lambda r, c: Conflict(
        f"Only a failed or canceled job can be retried; this one is {r.get('status')}.",
        details={"job_id": str(c.get("job_id")), "current_status": r.get("status")}),
    "template_not_found": lambda r, c: NotFound("Prompt template not found.",
                                                details={"template_id": str(c.get("template_id"))}),
    "merchant_not_found": lambda r, c: NotFound("Merchant not found.",
                                                details={"merchant_id": c.get("merchant_id")}),
    "rate_limited": lambda r, _: RateLimited(
        f"Hourly generation limit of {r.get('limit')} reached.", retry_after_seconds=int(r.get("retry_after_seconds")),
        details={"limit": r.get("limit"), "used": r.get("used"), "window_frees_at": r.get("window_frees_at")}),
    "cooldown_active": lambda r, _: CooldownActive(
        "The persona's variations were generated recently; regeneration is not available yet.",
        retry_after_seconds=int(r.get("retry_after_seconds")), details={"available_at": r.get("available_at")}),
    "budget_exceeded": lambda r, _: BudgetExceeded(
        "This job would exceed the merchant's monthly budget.",
        details={k: r.get(k) for k in ("budget_usd", "spent_usd", "reserved_usd", "estimated_cost_usd")}),
    "no_model": lambda r, _: NoModelConfigured(
        "No enabled default model is configured for this job type; an operator must enable one.",
        details={"job_type": r.get("job_type")}),
    # approvals (genjobs_approve_variation_v2)
    "variation_not_found": lambda r, c: NotFound("Variation not found for this persona.",
                                                 details={"variation_id": str(c.get("variation_id"))}),
    "job_not_completed": lambda r, _: Conflict("Only variations of a completed job can be approved.",
                                               details={"job_id": r.get("job_id"), "job_status": r.get("job_status")}),
    "videos_in_progress": lambda r, _: Conflict(
        "The persona's state videos are being generated from the approved image; wait for the job to finish or "
        "cancel it first.", details={"active_job_id": r.get("active_job_id")}),
    # commands on one job (genjobs_*_job_v1, genjobs_record_state_v2, genjobs_report_progress_v2)
    "not_found": lambda r, c: NotFound("Job not found.", details={"job_id": str(c.get("job_id"))}),
    "stale_attempt": _stale,
    "not_running": _not_running,
    "state_not_requested": lambda r, c: ValidationFailed(
        f"The job did not ask for the state {c.get('state')!r}.",
        details={"job_id": str(c.get("job_id")), "state": c.get("state"),
                 "states_requested": list((r.get("job") or {}).get("states_requested") or [])}),
    "not_active": lambda r, c: IllegalTransition(
        f"The job is already {r.get_before('status')}; only queued or running jobs can be canceled.",
        details={"job_id": str(c.get("job_id")), "current_status": r.get_before("status"),
                 "requested_status": "canceled"}),
}


def refusal(answer: Outcome, **context: Any) -> GenjobsError | None:
    """The error for a refused outcome, or None when the outcome is not a refusal."""
    make = REFUSALS.get(answer.outcome)
    return None if make is None else make(answer, context)


def raise_refusal(answer: Outcome, **context: Any) -> None:
    """Raise the error of a refused outcome; do nothing for any other."""
    error = refusal(answer, **context)
    if error is not None:
        raise error
