"""Jobs: starting one (every limit checked exactly, in one round trip, then the worker invoked), reading
one with long-poll, keyset-paginated lists, the timeline, canceling, and the progress commands of trusted
workers. Each state change is one database function (sql/013); refusals are decoded in one table
(genjobs.services.outcomes).

Long-poll without LISTEN. Lambda reaches PostgreSQL through RDS Proxy, and `LISTEN` pins the proxy
session for the connection's whole life (and a pooled connection cannot safely keep a subscription
across requests). So `?wait=N` polls instead: each tick is one indexed single-row read of the job (its
primary key), and the answer goes out as soon as the version differs from the one the client knows. The
trade-off: a change is seen up to one tick late (LONG_POLL_TICK_MS, 100 ms by default: half a tick, about
50 ms, at the median; `make bench PART=longpoll`) and a waiting request costs one cheap read per tick (10
per waiting second), in exchange for no pinned sessions, no listener process and no
missed notifications. A finished job never changes again, so a wait on one returns at once.

Cursors. `GET /jobs` pages by keyset (created_at DESC, id DESC), so rows inserted while a client pages
never shift a page: no duplicates, no gaps. The cursor is opaque, keyed with a secret from configuration and
bound to its merchant and filters (genjobs.services.cursors).
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import logging
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any
from uuid import UUID

from genjobs.data import jobs as job_data
from genjobs.db import Database
from genjobs.errors import BadRequest, NotFound, ValidationFailed
from genjobs.models.actions import (
    AddGeneratedState,
    GetJobProgress,
    MarkCompleted,
    MarkFailed,
    ProgressCommand,
    UpdateCurrentStep,
    UpdateProgress,
)
from genjobs.models.jobs import (
    ALL_STATUSES,
    DEFAULT_PAGE_SIZE,
    MAX_PAGE_SIZE,
    MAX_TIMELINE_PAGE,
    MAX_WAIT_SECONDS,
    RUNNING_STATUSES,
    TERMINAL_STATUSES,
    Job,
    JobPage,
    JobProgress,
    JobTimeline,
    job_from_row,
)
from genjobs.ports import Clock, CursorKeys, FunctionInvoker, InvokeFailed
from genjobs.services import cursors
from genjobs.services.outcomes import raise_refusal
from genjobs.services.prompts import BUILTIN_TEMPLATES

logger = logging.getLogger("genjobs.jobs")

DEFAULT_LEASE = timedelta(seconds=300)  # genjobs.settings JOB_LEASE_SECONDS' default
MAX_IDEMPOTENCY_KEY_LENGTH = 255


def _not_found(job_id: UUID) -> NotFound:
    return NotFound("Job not found.", details={"job_id": str(job_id)})


# -- start ----------------------------------------------------------------------------------------------


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
    model_id: str | None = None,
) -> StartedJob:
    """Check idempotency, persona, variables, the active-job rule, rate limit, cooldown, the model (`model_id`,
    or the kind's default: enabled, of the job's kind, not eol) and budget, insert
    the queued job (one round trip), then hand it to the worker with an async invoke.

    A failed invoke does not fail the request: the job stays queued and the maintenance sweep dispatches it.
    """
    key = validate_idempotency_key(idempotency_key)
    builtin = BUILTIN_TEMPLATES[job_type]
    answer = job_data.start_job(
        db, merchant_id=merchant_id, persona_id=persona_id, job_type=job_type, variation_count=variation_count,
        states=states, prompt_variables=prompt_variables, idempotency_key=key,
        request_hash=request_fingerprint(job_type, persona_id, body),
        default_hourly_limit=limits.default_hourly_limit, cooldown=limits.cooldown, now=clock(),
        max_retries=limits.max_retries, builtin_variables=list(builtin.variables),
        builtin_defaults=dict(builtin.defaults), model_id=model_id,
    )
    raise_refusal(answer, persona_id=persona_id)
    if answer.outcome not in ("created", "replayed"):
        raise RuntimeError(f"unexpected start outcome {answer.outcome!r}")
    job = job_from_row(answer.get("job") or {})
    if answer.outcome == "replayed":
        return StartedJob(job=job, replayed=True, dispatched=False)
    return StartedJob(job=job, replayed=False, dispatched=dispatch_job(db, invoker, job.id, worker_function))


def dispatch_job(db: Database, invoker: FunctionInvoker, job_id: UUID, worker_function: str) -> bool:
    """Invoke the worker for a queued job; a refused invoke is noted and left to the re-dispatch sweep."""
    try:
        invoker.invoke_async(worker_function, {"action": "run_job", "job_id": str(job_id)})
    except InvokeFailed as exc:
        logger.warning("dispatch of job %s failed; it stays queued for re-dispatch: %s", job_id, exc)
        job_data.mark_dispatch_failed(db, job_id, str(exc))
        return False
    return True


# -- one job, with long-poll ----------------------------------------------------------------------------


@dataclass(frozen=True)
class LongPoll:
    """How a long-poll waits: `tick` seconds between reads; `sleep` and `monotonic` are injectable."""

    tick_seconds: float = 0.1
    sleep: Callable[[float], None] = time.sleep
    monotonic: Callable[[], float] = time.monotonic


def get_job(
    db: Database,
    merchant_id: str,
    job_id: UUID,
    *,
    wait_seconds: float = 0,
    known_version: int | None = None,
    poll: LongPoll | None = None,
) -> Job:
    """The job; with `wait_seconds` > 0, wait until its version differs from `known_version` (or from the
    version at the first read), the job finishes, or the time is up — then answer the job as it is."""
    if not 0 <= wait_seconds <= MAX_WAIT_SECONDS:
        raise ValidationFailed(f"wait must be between 0 and {MAX_WAIT_SECONDS} seconds.")
    job = job_data.find_job(db, merchant_id, job_id)
    if job is None:
        raise _not_found(job_id)
    if wait_seconds <= 0:
        return job
    poll = poll or LongPoll()
    baseline = job.version if known_version is None else known_version
    deadline = poll.monotonic() + wait_seconds
    while job.version == baseline and job.status not in TERMINAL_STATUSES:
        remaining = deadline - poll.monotonic()
        if remaining <= 0:
            break
        poll.sleep(min(poll.tick_seconds, remaining))
        found = job_data.find_job(db, merchant_id, job_id)
        if found is None:  # removed by retention while we waited
            raise _not_found(job_id)
        job = found
    return job


# -- lists ----------------------------------------------------------------------------------------------


def encode_cursor(keys: CursorKeys, owner: str, created_at: datetime, job_id: UUID,
                  filters: Mapping[str, Any]) -> str:
    return cursors.encode_cursor(keys, owner, created_at, str(job_id), filters)


def decode_cursor(keys: CursorKeys, owner: str, cursor: str, filters: Mapping[str, Any]) -> tuple[datetime, UUID]:
    created_at, key = cursors.decode_cursor(keys, owner, cursor, filters)
    try:
        return created_at, UUID(key)
    except ValueError as exc:
        raise BadRequest("The cursor is not valid; start again without it.",
                         details={"parameter": "cursor"}) from exc


def parse_statuses(value: str | None) -> tuple[str, ...] | None:
    """`status=failed,canceled`: one or more statuses, comma-separated; None for no filter."""
    if value is None:
        return None
    statuses = tuple(dict.fromkeys(part.strip() for part in value.split(",")))
    unknown = [s for s in statuses if s not in ALL_STATUSES]
    if not statuses or unknown:
        raise ValidationFailed("status must be one or more of " + ", ".join(ALL_STATUSES) + ", comma-separated.",
                               details={"parameter": "status", "unknown": unknown})
    return statuses


@dataclass(frozen=True)
class JobFilters:
    """What the job lists filter on; `status` is a set of statuses (any of them)."""

    status: tuple[str, ...] | None = None
    persona_id: UUID | None = None
    job_type: str | None = None
    created_after: datetime | None = None
    created_before: datetime | None = None

    def as_dict(self) -> dict[str, Any]:
        return {"status": ",".join(self.status) if self.status else None, "persona_id": self.persona_id,
                "job_type": self.job_type, "created_after": self.created_after,
                "created_before": self.created_before}


def _page(db: Database, merchant_id: str | None, filters: JobFilters, *, limit: int, cursor: str | None,
          cursor_scope: Mapping[str, Any], cursor_keys: CursorKeys) -> JobPage:
    if not 1 <= limit <= MAX_PAGE_SIZE:
        raise ValidationFailed(f"limit must be between 1 and {MAX_PAGE_SIZE}.")
    if filters.created_after and filters.created_before and filters.created_after >= filters.created_before:
        raise ValidationFailed("created_after must be before created_before.",
                               details={"parameter": "created_after"})
    scope = {**filters.as_dict(), **cursor_scope}
    owner = merchant_id if merchant_id is not None and not cursor_scope.get("operator") else cursors.OPERATOR
    after = decode_cursor(cursor_keys, owner, cursor, scope) if cursor is not None else None
    sql_filters = {k: v for k, v in dataclasses.asdict(filters).items() if v is not None}
    persona_known, rows = job_data.list_jobs(db, merchant_id, filters=sql_filters, after=after, limit=limit + 1)
    if not persona_known:
        raise NotFound("Persona not found.", details={"persona_id": str(filters.persona_id)})
    page, more = rows[:limit], len(rows) > limit
    next_cursor = encode_cursor(cursor_keys, owner, page[-1].created_at, page[-1].id, scope) if more else None
    return JobPage(items=page, next_cursor=next_cursor)


def list_jobs(
    db: Database,
    merchant_id: str,
    *,
    status: str | None = None,
    persona_id: UUID | None = None,
    job_type: str | None = None,
    created_after: datetime | None = None,
    created_before: datetime | None = None,
    limit: int = DEFAULT_PAGE_SIZE,
    cursor: str | None = None,
    cursor_keys: CursorKeys,
) -> JobPage:
    """A merchant's jobs, newest first, keyset paged; `status` may name several (`failed,canceled`)."""
    filters = JobFilters(status=parse_statuses(status), persona_id=persona_id, job_type=job_type,
                         created_after=created_after, created_before=created_before)
    return _page(db, merchant_id, filters, limit=limit, cursor=cursor, cursor_scope={}, cursor_keys=cursor_keys)


def list_all_jobs(
    db: Database,
    *,
    merchant_id: str | None = None,
    status: str | None = None,
    job_type: str | None = None,
    created_after: datetime | None = None,
    created_before: datetime | None = None,
    limit: int = DEFAULT_PAGE_SIZE,
    cursor: str | None = None,
    cursor_keys: CursorKeys,
) -> JobPage:
    """Every merchant's jobs for an operator (or one merchant's with `merchant_id`), newest first."""
    filters = JobFilters(status=parse_statuses(status), job_type=job_type, created_after=created_after,
                         created_before=created_before)
    return _page(db, merchant_id, filters, limit=limit, cursor=cursor,
                 cursor_scope={"operator": True, "merchant_id": merchant_id}, cursor_keys=cursor_keys)


# -- timeline -------------------------------------------------------------------------------------------


def job_timeline(db: Database, merchant_id: str, job_id: UUID, *, after: int = 0,
                 limit: int = MAX_TIMELINE_PAGE) -> JobTimeline:
    if not 1 <= limit <= MAX_TIMELINE_PAGE:
        raise ValidationFailed(f"limit must be between 1 and {MAX_TIMELINE_PAGE}.")
    rows = job_data.job_timeline(db, merchant_id, job_id, after=max(after, 0), limit=limit + 1)
    if rows is None:
        raise _not_found(job_id)
    page = rows[:limit]
    next_after = page[-1].id if len(rows) > limit else None
    return JobTimeline(job_id=job_id, items=page, next_after=next_after)


# -- cancel ---------------------------------------------------------------------------------------------


def cancel_job(db: Database, merchant_id: str, job_id: UUID, *, clock: Clock) -> Job:
    """Cancel a queued or running job, charged for the outputs it already has (sql/060). A finished job
    (completed, failed, canceled) is a 409 that names its current status; the worker of a canceled job is
    refused at its next write."""
    answer = job_data.cancel_job(db, merchant_id=merchant_id, job_id=job_id, now=clock())
    raise_refusal(answer, job_id=job_id)
    return answer.as_job()


# -- progress commands ----------------------------------------------------------------------------------


def run_command(db: Database, command: ProgressCommand, *, clock: Clock, lease: timedelta = DEFAULT_LEASE
                ) -> JobProgress:
    """A trusted worker's report, one statement each.

    `update_current_step`, `update_progress` and `add_generated_state` apply to running jobs (processing or
    generating_videos); `add_generated_state` appends a state once however often it is sent, and progress
    never moves backwards. `mark_completed` and `mark_failed` change the status through the transition
    table: a finished job cannot become something else (409 ILLEGAL_TRANSITION with the current status), and
    marking a job with the status it already has is an idempotent no-op (`changed: false`). With an `attempt`,
    a command for any other attempt is refused (409 STALE_ATTEMPT). Every answer is the job's progress after
    the command, from the same statement. A report or a state renews the job's lease to now + `lease`
    (JOB_LEASE_SECONDS): a worker that reports is alive."""
    job_id, merchant_id, attempt = command.job_id, command.merchant_id, command.attempt
    context: dict[str, Any] = {"job_id": job_id, "attempt": attempt}
    if isinstance(command, GetJobProgress):
        progress = job_data.read_progress(db, job_id=job_id, merchant_id=merchant_id)
        if progress is None:
            raise _not_found(job_id)
        return progress
    if isinstance(command, UpdateCurrentStep | UpdateProgress):
        answer = job_data.report_progress(
            db, job_id=job_id, merchant_id=merchant_id, attempt=attempt, step=command.step,
            progress=command.progress if isinstance(command, UpdateProgress) else None, now=clock(), lease=lease)
    elif isinstance(command, AddGeneratedState):
        context["state"] = command.state
        answer = job_data.record_state(db, job_id=job_id, merchant_id=merchant_id, attempt=attempt,
                                       running=RUNNING_STATUSES, state=command.state, url=command.video_url,
                                       complete_when_done=False, now=clock(), lease=lease)
    elif isinstance(command, MarkCompleted):
        answer = job_data.complete_job(db, job_id=job_id, merchant_id=merchant_id, attempt=attempt,
                                       cost_usd=command.cost_usd, now=clock())
    elif isinstance(command, MarkFailed):
        answer = job_data.fail_job(db, job_id=job_id, merchant_id=merchant_id, attempt=attempt, retryable=False,
                                   error_code=command.error_code, error_message=command.error_message,
                                   retry_at=None, now=clock())
    else:
        raise TypeError(f"unknown progress command {type(command).__name__}")
    raise_refusal(answer, **context)
    return answer.as_progress()


# -- operator retry -------------------------------------------------------------------------------------


def retry_job(db: Database, invoker: FunctionInvoker, job_id: UUID, *, actor: str, max_retries: int, clock: Clock,
              worker_function: str) -> Job:
    """Start a failed or canceled job again as a new job (`retry_of`), outside the hourly limit, inside the
    budget (genjobs_retry_job_v1, audited), then hand it to the worker."""
    answer = job_data.retry_job(db, job_id=job_id, actor=actor, now=clock(), max_retries=max_retries)
    raise_refusal(answer, job_id=job_id, persona_id=answer.get("persona_id"))
    if answer.outcome != "created":
        raise RuntimeError(f"unexpected retry outcome {answer.outcome!r}")
    job = answer.as_job()
    dispatch_job(db, invoker, job.id, worker_function)
    return job
