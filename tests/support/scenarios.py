"""Building blocks for tests of progress, approval and state videos: personas with generated variations,
approved personas, running state-video jobs — made through the real services (worker, approval)."""

from __future__ import annotations

from datetime import timedelta
from typing import Any
from uuid import UUID

from genjobs.db import Database
from genjobs.ports import MediaStore
from genjobs.services import approval, jobs, worker

from local_runner.media import LocalMediaProvider
from tests.support.fakes import FrozenClock, RecordingInvoker

LIMITS = jobs.LimitSettings(default_hourly_limit=1000, cooldown=timedelta(hours=24), max_retries=3)
SETTINGS = worker.WorkerSettings(lease=timedelta(minutes=5), video_lease=timedelta(minutes=30))


class NoVideos:
    """A media provider for image jobs only (LocalMediaProvider images; refuses videos)."""

    def __init__(self, store: Any) -> None:
        self.images = LocalMediaProvider(store)

    def generate_image(self, request: Any) -> Any:
        return self.images.generate_image(request)

    def start_video(self, request: Any) -> str:
        raise AssertionError("no video expected")

    def get_video_status(self, invocation_arn: str) -> Any:
        raise AssertionError("no video expected")


def new_persona(db: Database, merchant_id: str, name: str = "Pip") -> UUID:
    db.execute("INSERT INTO merchants (id) VALUES (%s) ON CONFLICT DO NOTHING", (merchant_id,))
    persona: UUID = db.fetch_value(
        "INSERT INTO personas (merchant_id, name, product_name, character_type) "
        "VALUES (%s, %s, 'SnackBot', 'robot') RETURNING id", (merchant_id, name))
    return persona


def start_job(db: Database, merchant_id: str, persona_id: UUID, *, clock: FrozenClock, job_type: str,
              count: int = 3, states: list[str] | None = None) -> UUID:
    started = jobs.start_job(
        db, RecordingInvoker(), merchant_id=merchant_id, persona_id=persona_id, job_type=job_type,
        body={"count": count, "states": states}, variation_count=count if job_type == "character_variations" else None,
        states=states, prompt_variables={}, idempotency_key=None, limits=LIMITS, clock=clock,
        worker_function="genjobs-generation")
    return started.job.id


def persona_with_variations(db: Database, merchant_id: str, store: MediaStore, *, clock: FrozenClock,
                            count: int = 3) -> tuple[UUID, UUID, list[UUID]]:
    """A persona whose variations job ran to completion (local images in `store`):
    (persona_id, job_id, variation ids by index)."""
    persona = new_persona(db, merchant_id)
    job_id = start_job(db, merchant_id, persona, clock=clock, job_type="character_variations", count=count)
    outcome = worker.run_job(db, NoVideos(store), store, job_id, settings=SETTINGS, clock=clock)
    assert outcome.status == "completed", outcome
    rows = db.fetch_all("SELECT id FROM character_variations WHERE job_id = %s ORDER BY variation_index", (job_id,))
    return persona, job_id, [r["id"] for r in rows]


def approved_persona(db: Database, merchant_id: str, store: MediaStore, *, clock: FrozenClock,
                     index: int = 0) -> tuple[UUID, UUID]:
    """(persona_id, approved variation id): an active persona ready for state videos."""
    persona, _, variations = persona_with_variations(db, merchant_id, store, clock=clock)
    approval.approve_variation(db, merchant_id, persona, variations[index], cooldown=LIMITS.cooldown, clock=clock)
    return persona, variations[index]


def video_output_key(job_id: UUID, state: str, invocation_id: str = "inv0001") -> str:
    return f"jobs/{job_id}/{state}/{invocation_id}/output.mp4"


class FilteredAfter(NoVideos):
    """Local images for the first `images` requests, then a content filter refusal (the job fails at once,
    keeping the images it made)."""

    def __init__(self, store: Any, images: int) -> None:
        super().__init__(store)
        self.left = images

    def generate_image(self, request: Any) -> Any:
        from genjobs.ports import ContentFiltered

        if self.left <= 0:
            raise ContentFiltered("blocked by the content filter")
        self.left -= 1
        return super().generate_image(request)


def failed_variations_job(db: Database, merchant_id: str, store: MediaStore, *, clock: FrozenClock,
                          images: int = 2) -> tuple[UUID, UUID]:
    """(persona_id, job_id): a variations job that stored `images` images and then failed (CONTENT_FILTERED)."""
    persona = new_persona(db, merchant_id)
    job_id = start_job(db, merchant_id, persona, clock=clock, job_type="character_variations", count=images + 1)
    outcome = worker.run_job(db, FilteredAfter(store, images), store, job_id, settings=SETTINGS, clock=clock)
    assert outcome.status == "failed", outcome
    return persona, job_id
