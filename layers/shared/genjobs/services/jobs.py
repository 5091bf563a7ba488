"""Reading jobs: one job with long-poll, keyset-paginated lists, the timeline; and canceling a job.

Long-poll without LISTEN. Lambda reaches PostgreSQL through RDS Proxy, and `LISTEN` pins the proxy
session for the connection's whole life (and a pooled connection cannot safely keep a subscription
across requests). So `?wait=N` polls instead: each tick is one indexed single-row read of the job (its
primary key), and the answer goes out as soon as the version differs from the one the client knows. The
trade-off: a change is seen up to one tick late (LONG_POLL_TICK_MS, 500 ms by default) and a waiting
request costs one cheap read per tick, in exchange for no pinned sessions, no listener process and no
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
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any
from uuid import UUID

from genjobs.data import job_reads
from genjobs.data import progress as progress_data
from genjobs.db import Database, Row
from genjobs.errors import BadRequest, IllegalTransition, NotFound, ValidationFailed
from genjobs.models.jobs import TERMINAL_STATUSES, Job
from genjobs.models.progress import DEFAULT_PAGE_SIZE, MAX_PAGE_SIZE, MAX_WAIT_SECONDS, JobEvent, JobPage, JobTimeline

_CURSOR_KEY = b"genjobs-job-list-cursor-v1"
_TAG_BYTES = 12
MAX_CURSOR_LENGTH = 512
MAX_TIMELINE_PAGE = 500


def _not_found(job_id: UUID) -> NotFound:
    return NotFound("Job not found.", details={"job_id": str(job_id)})


# -- one job, with long-poll ----------------------------------------------------------------------------


@dataclass(frozen=True)
class LongPoll:
    """How a long-poll waits: `tick` seconds between reads; `sleep` and `monotonic` are injectable."""

    tick_seconds: float = 0.5
    sleep: Callable[[float], None] = time.sleep
    monotonic: Callable[[], float] = time.monotonic


def parse_etag(value: str | None) -> int | None:
    """The version in an If-None-Match value: `"7"`, `W/"7"` or `7` (the first of a list); else None."""
    if not value:
        return None
    first = value.split(",")[0].strip()
    if first.startswith("W/"):
        first = first[2:]
    first = first.strip().strip('"')
    return int(first) if first.isdigit() and len(first) <= 18 else None


def etag(version: int) -> str:
    return f'"{version}"'


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
    row = job_reads.find_job(db, merchant_id, job_id)
    if row is None:
        raise _not_found(job_id)
    if wait_seconds <= 0:
        return Job.from_row(row)
    poll = poll or LongPoll()
    baseline = row["version"] if known_version is None else known_version
    deadline = poll.monotonic() + wait_seconds
    while row["version"] == baseline and row["status"] not in TERMINAL_STATUSES:
        remaining = deadline - poll.monotonic()
        if remaining <= 0:
            break
        poll.sleep(min(poll.tick_seconds, remaining))
        row = job_reads.find_job(db, merchant_id, job_id)
        if row is None:  # removed by retention while we waited
            raise _not_found(job_id)
    return Job.from_row(row)


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
    persona_known, rows = job_reads.list_jobs(db, merchant_id, filters=filters, after=after, limit=limit + 1)
    if not persona_known:
        raise NotFound("Persona not found.", details={"persona_id": str(persona_id)})
    page, more = rows[:limit], len(rows) > limit
    next_cursor = encode_cursor(page[-1]["created_at"], page[-1]["id"], filters) if more else None
    return JobPage(items=[Job.from_row(r) for r in page], next_cursor=next_cursor)


# -- timeline -------------------------------------------------------------------------------------------


def job_timeline(db: Database, merchant_id: str, job_id: UUID, *, after: int = 0,
                 limit: int = MAX_TIMELINE_PAGE) -> JobTimeline:
    if not 1 <= limit <= MAX_TIMELINE_PAGE:
        raise ValidationFailed(f"limit must be between 1 and {MAX_TIMELINE_PAGE}.")
    rows = job_reads.job_timeline(db, merchant_id, job_id, after=max(after, 0), limit=limit + 1)
    if rows is None:
        raise _not_found(job_id)
    page = rows[:limit]
    next_after = int(page[-1]["event_id"]) if len(rows) > limit else None
    return JobTimeline(job_id=job_id, items=[JobEvent.from_row(r) for r in page], next_after=next_after)


# -- cancel ---------------------------------------------------------------------------------------------


def cancel_job(db: Database, merchant_id: str, job_id: UUID) -> Job:
    """Cancel a queued or running job. A finished job (completed, failed, canceled) is a 409 that names
    its current status; the worker of a canceled job is refused at its next write."""
    row: Row | None = progress_data.cancel_job(db, merchant_id=merchant_id, job_id=job_id)
    if row is None:
        raise _not_found(job_id)
    if not row["canceled"]:
        current = row["before_status"]
        raise IllegalTransition(
            f"The job is already {current}; only queued or running jobs can be canceled.",
            details={"job_id": str(job_id), "current_status": current, "requested_status": "canceled"},
        )
    return Job.from_row(row)
