"""Progress commands for trusted callers (direct invoke): one statement each.

`update_current_step`, `update_progress` and `add_generated_state` apply to running jobs (processing or
generating_videos); `add_generated_state` appends a state once however often it is sent, and progress
never moves backwards. `mark_completed` and `mark_failed` change the status through the transition
table: a finished job cannot become something else (409 ILLEGAL_TRANSITION with the current status), and
marking a job with the status it already has is an idempotent no-op (`changed: false`). With an `attempt`,
a command for any other attempt is refused (409 STALE_ATTEMPT). Every answer is the job's progress after
the command, from the same statement.
"""

from __future__ import annotations

from uuid import UUID

from genjobs.clock import Clock
from genjobs.data import progress as progress_data
from genjobs.db import Database, Row
from genjobs.errors import Conflict, NotFound, StaleAttempt, ValidationFailed
from genjobs.models.progress import (
    AddGeneratedState,
    GetJobProgress,
    JobProgress,
    MarkCompleted,
    MarkFailed,
    ProgressCommand,
    UpdateCurrentStep,
    UpdateProgress,
)


def _not_found(job_id: UUID) -> NotFound:
    return NotFound("Job not found.", details={"job_id": str(job_id)})


def _answer(command: ProgressCommand, row: Row | None, *, unchanged_when: str | None = None) -> JobProgress:
    """The command's answer, or the error that says why nothing was written."""
    if row is None:
        raise _not_found(command.job_id)
    if row["applied"]:
        return JobProgress.from_row(row, changed=row["version"] != row["before_version"])
    current, current_attempt = row["before_status"], row["before_attempt"]
    if command.attempt is not None and command.attempt != current_attempt:
        raise StaleAttempt(
            f"Attempt {command.attempt} is no longer the job's current attempt.",
            details={"job_id": str(command.job_id), "attempt": command.attempt, "current_attempt": current_attempt,
                     "current_status": current},
        )
    if unchanged_when is not None and current == unchanged_when:
        return JobProgress.from_row(row, changed=False)
    if isinstance(command, AddGeneratedState) and current in progress_data.RUNNING:
        raise ValidationFailed(
            f"The job did not ask for the state {command.state!r}.",
            details={"job_id": str(command.job_id), "state": command.state,
                     "states_requested": list(row["states_requested"] or [])},
        )
    raise Conflict(
        f"The job is {current}: it is not running, so it takes no progress updates.",
        details={"job_id": str(command.job_id), "current_status": current},
    )


def run_command(db: Database, command: ProgressCommand, *, clock: Clock) -> JobProgress:
    job_id, merchant_id, attempt = command.job_id, command.merchant_id, command.attempt
    if isinstance(command, GetJobProgress):
        row = progress_data.read_progress(db, job_id=job_id, merchant_id=merchant_id)
        if row is None:
            raise _not_found(job_id)
        return JobProgress.from_row(row)
    if isinstance(command, UpdateCurrentStep):
        row = progress_data.update_fields(db, job_id=job_id, merchant_id=merchant_id, attempt=attempt,
                                          fields={"current_step": command.step})
        return _answer(command, row)
    if isinstance(command, UpdateProgress):
        fields: dict[str, object] = {"progress": command.progress}
        if command.step is not None:
            fields["current_step"] = command.step
        row = progress_data.update_fields(db, job_id=job_id, merchant_id=merchant_id, attempt=attempt, fields=fields)
        return _answer(command, row)
    if isinstance(command, AddGeneratedState):
        row = progress_data.add_generated_state(db, job_id=job_id, merchant_id=merchant_id, attempt=attempt,
                                                state=command.state, video_url=command.video_url)
        return _answer(command, row)
    if isinstance(command, MarkCompleted):
        row = progress_data.mark_completed(db, job_id=job_id, merchant_id=merchant_id, attempt=attempt,
                                           cost_usd=command.cost_usd, now=clock())
        return _answer(command, row, unchanged_when="completed")
    if isinstance(command, MarkFailed):
        row = progress_data.mark_failed(db, job_id=job_id, merchant_id=merchant_id, attempt=attempt,
                                        error_code=command.error_code, error_message=command.error_message)
        return _answer(command, row, unchanged_when="failed")
    raise TypeError(f"unknown progress command {type(command).__name__}")
