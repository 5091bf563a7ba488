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
never shift a page: no duplicates, no gaps. The cursor is opaque: base64url of a small JSON document (the
last row's created_at and id, and a fingerprint of the filters it belongs to) plus an HMAC tag that
detects edits. It is an integrity check, not a secret: a cursor only ever positions a list within the
caller's own jobs. Anything that does not decode, verify and parse is a 400, never a 500.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
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
)
from genjobs.ports import Clock, FunctionInvoker, InvokeFailed
from genjobs.services.outcomes import raise_refusal
from genjobs.services.prompts import BUILTIN_TEMPLATES

logger = logging.getLogger("genjobs.jobs")

_CURSOR_KEY = b"genjobs-job-list-cursor-v1"
_TAG_BYTES = 12
MAX_CURSOR_LENGTH = 512
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
) -> StartedJob:
    """Check idempotency, persona, variables, the active-job rule, rate limit, cooldown and budget, insert
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
        builtin_defaults=dict(builtin.defaults),
    )
    raise_refusal(answer, persona_id=persona_id)
    if answer.outcome not in ("created", "replayed"):
        raise RuntimeError(f"unexpected start outcome {answer.outcome!r}")
    job = Job.model_validate(answer.get("job"))
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


def _fingerprint(filters: Mapping[str, Any]) -> str:
    canonical = json.dumps({k: str(v) for k, v in sorted(filters.items()) if v is not None}, separators=(",", ":"))
    return hashlib.sha256(canonical.encode()).hexdigest()[:16]


def _tag(payload: bytes) -> bytes:
    return hmac.new(_CURSOR_KEY, payload, hashlib.sha256).digest()[:_TAG_BYTES]


def encode_cursor(created_at: datetime, job_id: UUID, filters: Mapping[str, Any]) -> str:
    payload = json.dumps({"t": created_at.isoformat(), "i": str(job_id), "f": _fingerprint(filters)},
                         separators=(",", ":")).encode()
    return base64.urlsafe_b64encode(payload + _tag(payload)).rstrip(b"=").decode("ascii")


def decode_cursor(cursor: str, filters: Mapping[str, Any]) -> tuple[datetime, UUID]:
    invalid = BadRequest("The cursor is not valid; start again without it.", details={"parameter": "cursor"})
    if not cursor or len(cursor) > MAX_CURSOR_LENGTH:
        raise invalid
    try:
        raw = base64.b64decode(cursor + "=" * (-len(cursor) % 4), altchars=b"-_", validate=True)
    except (binascii.Error, ValueError) as exc:
        raise invalid from exc
    payload, tag = raw[:-_TAG_BYTES], raw[-_TAG_BYTES:]
    if len(raw) <= _TAG_BYTES or not hmac.compare_digest(tag, _tag(payload)):
        raise invalid
    try:
        document = json.loads(payload)
        created_at = datetime.fromisoformat(document["t"])
        job_id = UUID(document["i"])
        fingerprint = document["f"]
    except (ValueError, KeyError, TypeError) as exc:
        raise invalid from exc
    if created_at.tzinfo is None:
        raise invalid
    if fingerprint != _fingerprint(filters):
        raise BadRequest("The cursor belongs to a list with other filters; start again without it.",
                         details={"parameter": "cursor"})
    return created_at, job_id


def list_jobs(
    db: Database,
    merchant_id: str,
    *,
    status: str | None = None,
    persona_id: UUID | None = None,
    job_type: str | None = None,
    limit: int = DEFAULT_PAGE_SIZE,
    cursor: str | None = None,
) -> JobPage:
    if not 1 <= limit <= MAX_PAGE_SIZE:
        raise ValidationFailed(f"limit must be between 1 and {MAX_PAGE_SIZE}.")
    filters: dict[str, Any] = {"status": status, "persona_id": persona_id, "job_type": job_type}
    after = decode_cursor(cursor, filters) if cursor is not None else None
    persona_known, rows = job_data.list_jobs(db, merchant_id, filters=filters, after=after, limit=limit + 1)
    if not persona_known:
        raise NotFound("Persona not found.", details={"persona_id": str(persona_id)})
    page, more = rows[:limit], len(rows) > limit
    next_cursor = encode_cursor(page[-1].created_at, page[-1].id, filters) if more else None
    return JobPage(items=page, next_cursor=next_cursor)


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


def cancel_job(db: Database, merchant_id: str, job_id: UUID) -> Job:
    """Cancel a queued or running job. A finished job (completed, failed, canceled) is a 409 that names
    its current status; the worker of a canceled job is refused at its next write."""
    answer = job_data.cancel_job(db, merchant_id=merchant_id, job_id=job_id)
    raise_refusal(answer, job_id=job_id)
    return answer.as_job()


# -- progress commands ----------------------------------------------------------------------------------


def run_command(db: Database, command: ProgressCommand, *, clock: Clock) -> JobProgress:
    """A trusted worker's report, one statement each.

    `update_current_step`, `update_progress` and `add_generated_state` apply to running jobs (processing or
    generating_videos); `add_generated_state` appends a state once however often it is sent, and progress
    never moves backwards. `mark_completed` and `mark_failed` change the status through the transition
    table: a finished job cannot become something else (409 ILLEGAL_TRANSITION with the current status), and
    marking a job with the status it already has is an idempotent no-op (`changed: false`). With an `attempt`,
    a command for any other attempt is refused (409 STALE_ATTEMPT). Every answer is the job's progress after
    the command, from the same statement."""
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
            progress=command.progress if isinstance(command, UpdateProgress) else None)
    elif isinstance(command, AddGeneratedState):
        context["state"] = command.state
        answer = job_data.record_state(db, job_id=job_id, merchant_id=merchant_id, attempt=attempt,
                                       running=RUNNING_STATUSES, state=command.state, url=command.video_url,
                                       complete_when_done=False, now=clock())
    elif isinstance(command, MarkCompleted):
        answer = job_data.complete_job(db, job_id=job_id, merchant_id=merchant_id, attempt=attempt,
                                       cost_usd=command.cost_usd, now=clock())
    elif isinstance(command, MarkFailed):
        answer = job_data.fail_job(db, job_id=job_id, merchant_id=merchant_id, attempt=attempt, retryable=False,
                                   error_code=command.error_code, error_message=command.error_message,
                                   retry_at=None)
    else:
        raise TypeError(f"unknown progress command {type(command).__name__}")
    raise_refusal(answer, **context)
    return answer.as_progress()
