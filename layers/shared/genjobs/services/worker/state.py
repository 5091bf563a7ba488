"""What every part of the worker shares: its settings, the outcome of a run, and failing an attempt."""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import timedelta
from uuid import UUID

from genjobs.data import jobs as job_data
from genjobs.data.jobs import Claim
from genjobs.db import Database
from genjobs.models.jobs import RUNNING_STATUSES
from genjobs.ports import Clock

logger = logging.getLogger("genjobs.worker")


class JobCannotRun(Exception):
    """The job cannot be run as asked (no approved image to animate, an image the model cannot take): it
    fails at once, without retries; no provider was at fault."""

    retryable = False

    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code
        self.message = message


@dataclass(frozen=True)
class WorkerSettings:
    # JOB_LEASE_SECONDS: renewed by every recorded image; also the lease of a state-videos job until its first
    # invocation is recorded, so a worker lost between the claim and that (fault: a killed connection) is
    # rescued within this lease, not the long one
    lease: timedelta = timedelta(seconds=300)
    # JOB_VIDEO_LEASE_SECONDS: Bedrock takes ~90 s per 6 s clip and queues beyond its concurrency quota; each
    # started invocation and each recorded state extends the job's lease to now + this
    video_lease: timedelta = timedelta(minutes=30)
    retry_backoff: timedelta = timedelta(seconds=5)
    # the media bucket's region: Bedrock writes a video only to a bucket in its model's region (None: unknown,
    # not checked, e.g. local media)
    media_region: str | None = None
    max_backoff: timedelta = timedelta(minutes=5)

    def backoff(self, retry_count: int) -> timedelta:
        return min(self.retry_backoff * (1 << min(retry_count, 20)), self.max_backoff)


@dataclass(frozen=True)
class RunOutcome:
    job_id: UUID
    claimed: bool
    status: str | None = None
    attempt: int | None = None
    cost_usd: float = 0.0
    charged: bool = False
    error_code: str | None = None
    stale: bool = False


def stale(claim: Claim) -> RunOutcome:
    """The attempt is no longer current (canceled, rescued, retried meanwhile): the worker stops."""
    return RunOutcome(job_id=claim.id, claimed=True, attempt=claim.attempt, stale=True)


def fail_attempt(db: Database, claim: Claim, *, retryable: bool, code: str, message: str,
                 settings: WorkerSettings, clock: Clock) -> RunOutcome:
    answer = job_data.fail_job(db, job_id=claim.id, attempt=claim.attempt, expected=RUNNING_STATUSES,
                               retryable=retryable, error_code=code, error_message=message,
                               retry_at=clock() + settings.backoff(claim.retry_count), now=clock())
    if answer.outcome not in ("retried", "failed"):
        return RunOutcome(job_id=claim.id, claimed=True, attempt=claim.attempt, stale=True, error_code=code)
    status = answer.as_job().status
    logger.warning("job %s attempt %s: %s (%s) -> %s", claim.id, claim.attempt, code, message, status)
    return RunOutcome(job_id=claim.id, claimed=True, status=status, attempt=claim.attempt, error_code=code)
