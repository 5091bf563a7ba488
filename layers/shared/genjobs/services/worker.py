"""The job worker (`run_job`): claim, generate, record, complete — every write fenced by the attempt.

Async invokes are retried by Lambda and may arrive twice; only one invoke can claim a queued job (the
claim is a conditional update that takes a new attempt number), so duplicates do nothing. A write from an
attempt that is no longer current (the job was rescued, retried or canceled meanwhile) matches no row:
the worker stops without touching the results.
"""

from __future__ import annotations

import hashlib
import logging
from dataclasses import dataclass
from datetime import timedelta
from decimal import Decimal
from typing import Any
from uuid import UUID

from genjobs.clock import Clock
from genjobs.data import jobs as job_data
from genjobs.db import Database, Row
from genjobs.media.provider import ImageRequest, MediaProvider, MediaStore, ProviderError
from genjobs.services.prompts import render_prompt

logger = logging.getLogger("genjobs.worker")

# Nova Canvas and Titan Image Generator accept seeds in [0, 858993459]
MAX_SEED = 858_993_459


@dataclass(frozen=True)
class WorkerSettings:
    lease: timedelta = timedelta(seconds=300)
    # state videos: Bedrock takes ~90 s per 6 s clip and queues beyond its concurrency quota; the job is
    # leased this long from the start of its video phase (each started invocation extends it)
    video_lease: timedelta = timedelta(minutes=30)
    retry_backoff: timedelta = timedelta(seconds=5)
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


def variation_seed(job_id: UUID, index: int) -> int:
    """Deterministic per job and index: a re-run after a rescue asks for the same images."""
    digest = hashlib.sha256(f"{job_id}:{index}".encode()).digest()
    return int.from_bytes(digest[:8], "big") % (MAX_SEED + 1)


def persona_fields(claim: Row) -> dict[str, Any]:
    return {
        "name": claim.get("persona_name"),
        "description": claim.get("persona_description"),
        "product_name": claim.get("persona_product_name"),
        "character_type": claim.get("persona_character_type"),
    }


def run_job(
    db: Database,
    provider: MediaProvider,
    store: MediaStore,
    job_id: UUID,
    *,
    settings: WorkerSettings,
    clock: Clock,
) -> RunOutcome:
    claim = job_data.claim_job(db, job_id, clock(), settings.lease)
    if claim is None:
        logger.info("job %s is not claimable (duplicate or stale invoke); nothing to do", job_id)
        return RunOutcome(job_id=job_id, claimed=False)
    attempt = int(claim["attempt"])
    try:
        if claim["job_type"] == "character_variations":
            return _run_variations(db, provider, store, claim, settings=settings, clock=clock)
        from genjobs.services.videos import start_state_videos

        return start_state_videos(db, provider, store, claim, settings=settings, clock=clock)
    except ProviderError as exc:
        return _fail_attempt(db, claim, attempt, retryable=exc.retryable, code=exc.code, message=exc.message,
                             settings=settings, clock=clock)
    except Exception as exc:
        if _is_database_error(exc):
            raise  # the lease runs out and the rescue sweep retries the job
        logger.exception("job %s attempt %s failed unexpectedly", job_id, attempt)
        return _fail_attempt(db, claim, attempt, retryable=True, code="WORKER_ERROR",
                             message=f"{type(exc).__name__}: {exc}", settings=settings, clock=clock)


def _is_database_error(exc: Exception) -> bool:
    from genjobs.errors import DatabaseUnavailable

    return isinstance(exc, DatabaseUnavailable)


def _fail_attempt(db: Database, claim: Row, attempt: int, *, retryable: bool, code: str, message: str,
                  settings: WorkerSettings, clock: Clock) -> RunOutcome:
    row = job_data.fail_or_retry_job(
        db, job_id=claim["id"], attempt=attempt, retryable=retryable, error_code=code, error_message=message,
        retry_at=clock() + settings.backoff(int(claim["retry_count"])),
    )
    if row is None:
        return RunOutcome(job_id=claim["id"], claimed=True, attempt=attempt, stale=True, error_code=code)
    logger.warning("job %s attempt %s: %s (%s) -> %s", claim["id"], attempt, code, message, row["status"])
    return RunOutcome(job_id=claim["id"], claimed=True, status=row["status"], attempt=attempt, error_code=code)


def _run_variations(db: Database, provider: MediaProvider, store: MediaStore, claim: Row, *,
                    settings: WorkerSettings, clock: Clock) -> RunOutcome:
    job_id: UUID = claim["id"]
    attempt = int(claim["attempt"])
    count = int(claim["variation_count"])
    parameters: dict[str, Any] = dict(claim.get("model_parameters") or {})
    prompt = render_prompt(
        claim.get("template_text"), "character_variations", persona=persona_fields(claim),
        variables=dict(claim.get("prompt_variables") or {}), template_defaults=claim.get("template_defaults"),
    )
    for index in range(count):
        image = provider.generate_image(ImageRequest(
            model_id=claim["model_id"], prompt=prompt, seed=variation_seed(job_id, index),
            width=int(parameters.get("width", 1024)), height=int(parameters.get("height", 1024)),
            parameters=parameters,
        ))
        stored = store.put(f"jobs/{job_id}/variations/{index}.png", image.data, image.content_type)
        recorded = job_data.record_variation(
            db, job_id=job_id, attempt=attempt, index=index, seed=variation_seed(job_id, index),
            bucket=stored.bucket, key=stored.key, url=stored.url, content_type=stored.content_type,
            size_bytes=stored.size_bytes, width=image.width, height=image.height,
            progress=100 * (index + 1) // count, step=f"generated_variation_{index + 1}_of_{count}",
            lease_until=clock() + settings.lease, prompt=prompt,
        )
        if not recorded:
            logger.info("job %s attempt %s is no longer current; stopping", job_id, attempt)
            return RunOutcome(job_id=job_id, claimed=True, attempt=attempt, stale=True)
    unit_price = Decimal(str(claim.get("unit_price_usd") or 0))
    completed = job_data.complete_variations_job(db, job_id=job_id, attempt=attempt, now=clock(),
                                                 quantity=count, unit_price=unit_price)
    if completed is None:
        return RunOutcome(job_id=job_id, claimed=True, attempt=attempt, stale=True)
    return RunOutcome(job_id=job_id, claimed=True, status="completed", attempt=attempt,
                      cost_usd=float(completed["cost_usd"]), charged=bool(completed["charged"]))
