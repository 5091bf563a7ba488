"""Character variations: one image per seed, each stored and recorded as it arrives, then the job completed."""

from __future__ import annotations

import hashlib
import logging
from uuid import UUID

from genjobs.data import jobs as job_data
from genjobs.data.jobs import Claim
from genjobs.db import Database
from genjobs.ports import Clock, ImageRequest, MediaProvider, MediaStore
from genjobs.services.prompts import render_prompt
from genjobs.services.worker.state import RunOutcome, WorkerSettings, stale

logger = logging.getLogger("genjobs.worker")

# Nova Canvas and Titan Image Generator accept seeds in [0, 858993459]; Stability AI in [0, 4294967294]
MAX_SEED = 858_993_459


def variation_seed(job_id: UUID, index: int) -> int:
    """Deterministic per job and index: a re-run after a rescue asks for the same images."""
    digest = hashlib.sha256(f"{job_id}:{index}".encode()).digest()
    return int.from_bytes(digest[:8], "big") % (MAX_SEED + 1)


def variation_key(job_id: UUID, index: int) -> str:
    """Where a variation's image is stored (the S3 notification filter must not take it for a video)."""
    return f"jobs/{job_id}/variations/{index}.png"


def run_variations(db: Database, provider: MediaProvider, store: MediaStore, claim: Claim, *,
                   settings: WorkerSettings, clock: Clock) -> RunOutcome:
    job_id, attempt = claim.id, claim.attempt
    count = int(claim.variation_count or 1)
    parameters = claim.model_parameters
    prompt = render_prompt(claim.template_text, "character_variations", persona=claim.persona_fields(),
                           variables=claim.prompt_variables, template_defaults=claim.template_defaults)
    for index in range(count):
        seed = variation_seed(job_id, index)
        image = provider.generate_image(ImageRequest(
            model_id=claim.model_id, prompt=prompt, seed=seed, width=int(parameters.get("width", 1024)),
            height=int(parameters.get("height", 1024)), parameters=parameters, family=claim.model_family,
            region=claim.model_region,
        ))
        stored = store.put(variation_key(job_id, index), image.data, image.content_type)
        recorded = job_data.record_variation(
            db, job_id=job_id, attempt=attempt, index=index, seed=seed, bucket=stored.bucket, key=stored.key,
            url=stored.url, content_type=stored.content_type, size_bytes=stored.size_bytes, width=image.width,
            height=image.height, progress=100 * (index + 1) // count,
            step=f"generated_variation_{index + 1}_of_{count}", lease_until=clock() + settings.lease, prompt=prompt,
        )
        if not recorded:
            logger.info("job %s attempt %s is no longer current; stopping", job_id, attempt)
            return stale(claim)
    answer = job_data.complete_job(db, job_id=job_id, attempt=attempt, expected=("processing",), now=clock())
    if answer.outcome != "completed":
        return stale(claim)
    job = answer.as_job()
    return RunOutcome(job_id=job_id, claimed=True, status="completed", attempt=attempt, cost_usd=job.cost_usd,
                      charged=answer.charged)
