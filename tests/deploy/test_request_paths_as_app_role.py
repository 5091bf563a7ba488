"""Every request path works logged in as the least-privilege role genjobs_app (sql/030: DML only, owns nothing),
the way every function but migrate connects in AWS: a path that needed more (DDL, a sequence it may not use, a
table it cannot write) fails here."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import timedelta
from decimal import Decimal
from pathlib import Path

import pytest
from genjobs.db import Database, DatabaseSettings
from genjobs.models.personas import CreatePersonaRequest
from genjobs.ports import CursorKeys, utc_now
from genjobs.services import approval, jobs, limits, maintenance, personas, worker
from genjobs.services.worker import videos as worker_videos
from psycopg.conninfo import conninfo_to_dict, make_conninfo

from local_runner.media import LocalMediaProvider, LocalMediaStore
from tests.support.fakes import FrozenClock, RecordingInvoker
from tests.support.scenarios import LIMITS, SETTINGS, video_output_key

APP_ROLE = "genjobs_app"


@pytest.fixture
def app_db(database_url: str) -> Iterator[Database]:
    params = conninfo_to_dict(database_url)
    params.pop("password", None)
    params["user"] = APP_ROLE
    database = Database(DatabaseSettings(url=make_conninfo("", **params), pool_max_size=2))
    yield database
    database.close()


def test_a_persona_from_creation_to_state_videos_needs_only_the_app_role(app_db: Database, tmp_path: Path) -> None:
    assert app_db.fetch_value("SELECT current_user") == APP_ROLE
    clock = FrozenClock()
    store = LocalMediaStore(tmp_path, bucket="genjobs-media-local", base_url="http://media.test")
    provider = LocalMediaProvider(store)
    invoker = RecordingInvoker()

    # create, start, run, approve
    persona = personas.create_persona(app_db, "acme", CreatePersonaRequest(name="Pip")).persona
    started = jobs.start_job(
        app_db,
        invoker,
        merchant_id="acme",
        persona_id=persona.id,
        job_type="character_variations",
        body={},
        variation_count=2,
        states=None,
        prompt_variables={},
        idempotency_key="k1",
        limits=LIMITS,
        clock=clock,
        worker_function="genjobs-worker",
    )
    assert worker.run_job(app_db, provider, store, started.job.id, settings=SETTINGS, clock=clock).status == "completed"
    variations = approval.list_variations(app_db, "acme", persona.id)
    approved, _ = approval.approve_variation(
        app_db, "acme", persona.id, variations.items[0].id, cooldown=LIMITS.cooldown, clock=clock
    )
    assert approved.status == "active"

    # state videos, completed by S3 events
    videos = jobs.start_job(
        app_db,
        invoker,
        merchant_id="acme",
        persona_id=persona.id,
        job_type="state_videos",
        body={"states": ["idle"]},
        variation_count=None,
        states=["idle"],
        prompt_variables={},
        idempotency_key=None,
        limits=LIMITS,
        clock=clock,
        worker_function="genjobs-worker",
    )
    quiet = LocalMediaProvider(store, schedule=lambda delay, action: None)  # the test delivers the S3 event
    assert (
        worker.run_job(app_db, quiet, store, videos.job.id, settings=SETTINGS, clock=clock).status
        == "generating_videos"
    )
    recorded = worker_videos.record_video_output(
        app_db, store, bucket=store.bucket, key=video_output_key(videos.job.id, "idle"), size=10, clock=clock
    )
    assert recorded.outcome == "completed"

    # reads, limits, usage, cancel, delete, the maintenance sweeps
    assert jobs.get_job(app_db, "acme", videos.job.id).status == "completed"
    assert len(jobs.list_jobs(app_db, "acme", cursor_keys=CursorKeys((b"k" * 32,))).items) == 2
    assert jobs.job_timeline(app_db, "acme", started.job.id).items
    assert limits.get_usage(app_db, "acme", default_hourly_limit=10, clock=clock).generations_last_hour == 2
    assert limits.record_usage(app_db, "acme", usage_key="extra", amount_usd=Decimal(1), clock=clock).recorded
    other = personas.create_persona(app_db, "acme", CreatePersonaRequest(name="Other")).persona
    queued = jobs.start_job(
        app_db,
        invoker,
        merchant_id="acme",
        persona_id=other.id,
        job_type="character_variations",
        body={},
        variation_count=1,
        states=None,
        prompt_variables={},
        idempotency_key=None,
        limits=LIMITS,
        clock=clock,
        worker_function="genjobs-worker",
    )
    assert jobs.cancel_job(app_db, "acme", queued.job.id, clock=clock).status == "canceled"
    personas.delete_persona(app_db, "acme", other.id, clock=clock)
    sweep = maintenance.MaintenanceSettings(
        worker_function="genjobs-worker", retention_failed=timedelta(0), retention_archive=timedelta(0)
    )
    clock.advance(utc_now() - clock() + timedelta(days=1))  # the database stamps completed_at with its own now()
    maintenance.rescue_stale_jobs(app_db, invoker, settings=sweep, clock=clock)
    maintenance.redispatch_queued_jobs(app_db, invoker, settings=sweep, clock=clock)
    report = maintenance.apply_retention(app_db, store, settings=sweep, clock=clock)
    assert report.deleted == 1 and report.archived == 2
