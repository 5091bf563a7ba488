"""The job worker (`run_job`): claim, generate, record, complete — every write fenced by the attempt.

Async invokes are retried by Lambda and may arrive twice; only one invoke can claim a queued job (the
claim is a conditional update that takes a new attempt number), so duplicates do nothing. A write from an
attempt that is no longer current (the job was rescued, retried or canceled meanwhile) matches no row:
the worker stops without touching the results.

The parts: `variations` (images), `videos` (state videos and their S3 completion), `state` (settings,
outcomes, failing an attempt). Imports go from here to the parts, never back.
"""

from __future__ import annotations

import logging
from uuid import UUID

from genjobs.data import jobs as job_data
from genjobs.db import Database
from genjobs.errors import DatabaseUnavailable
from genjobs.ports import Clock, MediaProvider, MediaStore, ProviderError
from genjobs.services.worker.state import JobCannotRun, RunOutcome, WorkerSettings, fail_attempt
from genjobs.services.worker.variations import run_variations
from genjobs.services.worker.videos import start_state_videos

logger = logging.getLogger("genjobs.worker")

__all__ = ["RunOutcome", "WorkerSettings", "run_job"]


def run_job(db: Database, provider: MediaProvider, store: MediaStore, job_id: UUID, *, settings: WorkerSettings,
            clock: Clock) -> RunOutcome:
    claim = job_data.claim_job(db, job_id, clock(), settings.lease)
    if claim is None:
        logger.info("job %s is not claimable (duplicate or stale invoke); nothing to do", job_id)
        return RunOutcome(job_id=job_id, claimed=False)
    try:
        if claim.job_type == "character_variations":
            return run_variations(db, provider, store, claim, settings=settings, clock=clock)
        return start_state_videos(db, provider, store, claim, settings=settings, clock=clock)
    except (ProviderError, JobCannotRun) as exc:
        return fail_attempt(db, claim, retryable=exc.retryable, code=exc.code, message=exc.message,
                            settings=settings, clock=clock)
    except DatabaseUnavailable:
        raise  # the lease runs out and the rescue sweep retries the job
    except Exception as exc:
        logger.exception("job %s attempt %s failed unexpectedly", job_id, claim.attempt)
        return fail_attempt(db, claim, retryable=True, code="WORKER_ERROR", message=f"{type(exc).__name__}: {exc}",
                            settings=settings, clock=clock)
