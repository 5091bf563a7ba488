"""Maintenance sweeps on a real PostgreSQL: rescue without double runs, re-dispatch, retention."""

from __future__ import annotations

import threading
from datetime import timedelta
from decimal import Decimal
from typing import Any

import boto3
import pytest
from botocore.stub import Stubber
from genjobs.adapters.bedrock import BedrockMediaProvider
from genjobs.adapters.s3 import S3MediaStore
from genjobs.data import jobs as job_data
from genjobs.db import Database
from genjobs.services import maintenance, worker
from moto import mock_aws

from local_runner.media import LocalMediaStore
from tests.support.database import make_database
from tests.support.fakes import FrozenClock, RecordingInvoker, bedrock_client, stub_images
from tests.support.starts import new_persona, start

LEASE = timedelta(minutes=5)
WORKER = worker.WorkerSettings(lease=LEASE)
SETTINGS = maintenance.MaintenanceSettings(worker_function="genjobs-generation", batch_size=20)


def dispatched_ids(invoker: RecordingInvoker) -> list[str]:
    return [payload["job_id"] for _, payload in invoker.calls]


def test_killed_worker_is_rescued_rerun_once_and_its_late_writes_refused(db: Database) -> None:
    clock = FrozenClock()
    job = start(db, "acme", new_persona(db, "acme"), clock=clock).job
    # Given attempt 1 claimed the job, stored one image, then died (its lease runs out)
    first = job_data.claim_job(db, job.id, clock(), LEASE)
    assert first is not None and first.attempt == 1
    assert job_data.record_variation(
        db, job_id=job.id, attempt=1, index=0, seed=1, bucket="media", key=f"jobs/{job.id}/variations/0.png",
        url="u0", content_type="image/png", size_bytes=10, width=16, height=16, progress=33, step="s",
        lease_until=clock() + LEASE, prompt="p")
    clock.advance(LEASE + timedelta(seconds=1))

    # When the rescue sweep runs
    invoker = RecordingInvoker()
    report = maintenance.rescue_stale_jobs(db, invoker, settings=SETTINGS, clock=clock)

    # Then the job is queued again with one more retry, and the worker was re-invoked for it once
    assert (report.rescued, report.timed_out) == (1, 0)
    assert dispatched_ids(invoker) == [str(job.id)]
    row = db.fetch_one("SELECT status, retry_count, lease_expires_at FROM generation_jobs WHERE id = %s", (job.id,))
    assert row == {"status": "queued", "retry_count": 1, "lease_expires_at": None}
    # and the re-dispatch sweep does not invoke it a second time
    assert maintenance.redispatch_queued_jobs(db, invoker, settings=SETTINGS, clock=clock).redispatched == 0

    # When attempt 2 runs the job to completion (same deterministic seeds and keys)
    with mock_aws():
        s3 = boto3.client("s3", region_name="us-east-1")
        s3.create_bucket(Bucket="media")
        client = bedrock_client()
        with Stubber(client) as stubber:
            stub_images(stubber, 3)
            outcome = worker.run_job(db, BedrockMediaProvider(client), S3MediaStore("media", client=s3), job.id,
                                     settings=WORKER, clock=clock)
    assert outcome.status == "completed" and outcome.attempt == 2

    # And the old attempt writes late
    late_record = job_data.record_variation(
        db, job_id=job.id, attempt=1, index=1, seed=2, bucket="media", key="late.png", url="late",
        content_type="image/png", size_bytes=1, width=1, height=1, progress=66, step="late",
        lease_until=clock() + LEASE, prompt="p")
    late_complete = job_data.complete_job(db, job_id=job.id, attempt=1, expected=("processing",), now=clock())

    # Then the late writes are refused, and outputs and cost are counted once
    assert (late_record, late_complete.outcome, late_complete.charged) == (False, "stale_attempt", False)
    assert db.fetch_value("SELECT count(*) FROM media_outputs WHERE job_id = %s", (job.id,)) == 3
    assert db.fetch_value("SELECT count(*) FROM character_variations WHERE job_id = %s", (job.id,)) == 3
    assert db.fetch_value("SELECT sum(amount_usd) FROM usage_ledger") == Decimal("0.12")
    assert db.fetch_value("SELECT count(*) FROM usage_ledger") == 1


def test_job_that_never_finishes_ends_timed_out_after_max_retries(db: Database) -> None:
    clock = FrozenClock()
    persona = new_persona(db, "acme")
    job = start(db, "acme", persona, clock=clock).job
    invoker = RecordingInvoker()
    for attempt in range(1, 5):
        # every attempt claims the job and then disappears
        assert job_data.claim_job(db, job.id, clock(), LEASE) is not None
        clock.advance(LEASE + timedelta(seconds=1))
        maintenance.rescue_stale_jobs(db, invoker, settings=SETTINGS, clock=clock)
        status = db.fetch_value("SELECT status FROM generation_jobs WHERE id = %s", (job.id,))
        assert status == ("queued" if attempt <= 3 else "failed")
    row = db.fetch_one("SELECT status, error_code, error_message, retry_count, attempt FROM generation_jobs")
    assert row is not None
    assert (row["status"], row["error_code"], row["retry_count"], row["attempt"]) == ("failed", "TIMED_OUT", 3, 4)
    assert "4 attempts" in row["error_message"]
    assert len(invoker.calls) == 3  # re-invoked after each of the three rescues, not after the final failure
    assert db.fetch_value("SELECT status FROM personas WHERE id = %s", (persona,)) == "draft"


def test_two_sweeps_in_parallel_rescue_each_job_once(database_url: str) -> None:
    # Given 60 jobs whose leases have expired
    clock = FrozenClock()
    setup = make_database(database_url, pool_max_size=2)
    try:
        jobs = []
        for _ in range(60):
            jobs.append(start(setup, "acme", new_persona(setup, "acme"), clock=clock,
                              limits=_unlimited()).job.id)
            assert job_data.claim_job(setup, jobs[-1], clock(), LEASE) is not None
    finally:
        setup.close()
    clock.advance(LEASE * 2)

    # When two sweeps, each with its own connection and small batches, run at the same moment
    invoker = RecordingInvoker()
    barrier = threading.Barrier(2)
    reports: list[maintenance.SweepReport] = []
    small = maintenance.MaintenanceSettings(worker_function="w", batch_size=7, max_batches=100)

    def sweep() -> None:
        database = make_database(database_url, pool_max_size=1)
        try:
            barrier.wait()
            reports.append(maintenance.rescue_stale_jobs(database, invoker, settings=small, clock=clock))
        finally:
            database.close()

    threads = [threading.Thread(target=sweep) for _ in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()

    # Then every job was rescued and re-invoked exactly once between them
    assert sum(r.rescued for r in reports) == 60
    assert sorted(dispatched_ids(invoker)) == sorted(str(j) for j in jobs)
    check = make_database(database_url)
    try:
        requeued = "SELECT count(*) FROM generation_jobs WHERE status = 'queued' AND retry_count = 1"
        assert check.fetch_value(requeued) == 60
    finally:
        check.close()


def _unlimited() -> Any:
    from genjobs.services.jobs import LimitSettings

    return LimitSettings(default_hourly_limit=1000, cooldown=timedelta(hours=24), max_retries=3)


def test_redispatch_lost_invokes_and_elapsed_backoffs_once(db: Database) -> None:
    clock = FrozenClock()
    lost = start(db, "acme", new_persona(db, "acme"), clock=clock).job
    retrying = start(db, "acme", new_persona(db, "acme"), clock=clock).job
    fresh_persona = new_persona(db, "acme")
    db.execute("UPDATE generation_jobs SET last_dispatch_at = %s WHERE id IN (%s, %s)",
               (clock(), lost.id, retrying.id))
    # the second job failed a retryable attempt: queued again, available after its backoff
    assert job_data.claim_job(db, retrying.id, clock(), LEASE) is not None
    job_data.fail_job(db, job_id=retrying.id, attempt=1, retryable=True, error_code="PROVIDER_THROTTLED",
                      error_message="slow down", retry_at=clock() + timedelta(seconds=30), now=clock())
    invoker = RecordingInvoker()

    # Right away: nothing is due (the first dispatch is recent, the backoff has not elapsed)
    assert maintenance.redispatch_queued_jobs(db, invoker, settings=SETTINGS, clock=clock).redispatched == 0

    # After the backoff: the retrying job is dispatched, once
    clock.advance(timedelta(seconds=30))
    assert maintenance.redispatch_queued_jobs(db, invoker, settings=SETTINGS, clock=clock).redispatched == 1
    assert maintenance.redispatch_queued_jobs(db, invoker, settings=SETTINGS, clock=clock).redispatched == 0
    assert dispatched_ids(invoker) == [str(retrying.id)]

    # After the lost-invoke threshold: the job whose invoke vanished is dispatched again
    clock.advance(SETTINGS.redispatch_after)
    start(db, "acme", fresh_persona, clock=clock)  # a brand-new job is not due yet
    report = maintenance.redispatch_queued_jobs(db, invoker, settings=SETTINGS, clock=clock)
    assert report.redispatched == 2  # the lost one, and the retrying one whose dispatch is now old too
    assert sorted(dispatched_ids(invoker)[1:]) == sorted([str(lost.id), str(retrying.id)])


def test_dispatch_failures_are_counted_and_retried_later(db: Database) -> None:
    clock = FrozenClock()
    job = start(db, "acme", new_persona(db, "acme"), clock=clock).job
    db.execute("UPDATE generation_jobs SET last_dispatch_at = %s WHERE id = %s", (clock(), job.id))
    clock.advance(SETTINGS.redispatch_after)
    report = maintenance.redispatch_queued_jobs(db, RecordingInvoker(fail=True), settings=SETTINGS, clock=clock)
    assert (report.redispatched, report.dispatch_failures) == (0, 1)
    clock.advance(SETTINGS.redispatch_after)
    invoker = RecordingInvoker()
    assert maintenance.redispatch_queued_jobs(db, invoker, settings=SETTINGS, clock=clock).redispatched == 1


def finished_job(db: Database, clock: FrozenClock, status: str, days_ago: int, persona: Any = None) -> Any:
    persona = persona or new_persona(db, "acme")
    job = start(db, "acme", persona, clock=clock, limits=_unlimited()).job
    db.execute("UPDATE generation_jobs SET status = 'processing' WHERE id = %s", (job.id,))
    db.execute("UPDATE generation_jobs SET status = %s, error_code = CASE WHEN %s = 'failed' THEN 'X' END "
               "WHERE id = %s", (status, status, job.id))
    db.execute("UPDATE generation_jobs SET completed_at = %s WHERE id = %s",
               (clock() - timedelta(days=days_ago), job.id))
    db.execute("INSERT INTO media_outputs (job_id, merchant_id, kind, s3_bucket, s3_key, url, content_type) "
               "VALUES (%s, 'acme', 'image', 'media', %s, 'u', 'image/png')", (job.id, f"jobs/{job.id}/0.png"))
    return job.id


def test_retention_removes_exactly_what_is_due(db: Database, store: LocalMediaStore) -> None:
    clock = FrozenClock()
    old_failed = finished_job(db, clock, "failed", 31)
    old_canceled = finished_job(db, clock, "canceled", 45)
    recent_failed = finished_job(db, clock, "failed", 29)
    old_completed = finished_job(db, clock, "completed", 91)
    recent_completed = finished_job(db, clock, "completed", 89)
    # an active persona whose approved variation comes from an old completed job
    persona = db.fetch_value("SELECT persona_id FROM generation_jobs WHERE id = %s", (old_completed,))
    variation = db.fetch_value(
        "INSERT INTO character_variations (job_id, persona_id, merchant_id, variation_index, seed, image_url) "
        "VALUES (%s, %s, 'acme', 0, 1, 'u') RETURNING id", (old_completed, persona))
    db.execute("UPDATE character_variations SET approved = true WHERE id = %s", (variation,))
    db.execute("UPDATE personas SET status = 'active', approved_variation_id = %s WHERE id = %s", (variation, persona))
    events_before = db.fetch_value("SELECT count(*) FROM job_events WHERE job_id = %s", (old_completed,))

    report = maintenance.apply_retention(db, store, settings=SETTINGS, clock=clock)

    remaining = {r["id"] for r in db.fetch_all("SELECT id FROM generation_jobs")}
    assert (report.deleted, report.archived) == (2, 1)
    assert remaining == {recent_failed, old_completed, recent_completed}
    assert db.fetch_value("SELECT count(*) FROM media_outputs WHERE job_id IN (%s, %s)",
                          (old_failed, old_canceled)) == 0
    assert db.fetch_value("SELECT count(*) FROM job_events WHERE job_id IN (%s, %s)", (old_failed, old_canceled)) == 0
    # the archived job keeps its row, outputs and the persona's approved variation; its timeline moved
    assert db.fetch_value("SELECT count(*) FROM job_events WHERE job_id = %s", (old_completed,)) == 0
    archive = db.fetch_one("SELECT job, events FROM job_archives WHERE job_id = %s", (old_completed,))
    assert archive is not None and len(archive["events"]) == events_before
    assert archive["job"]["status"] == "completed"
    assert db.fetch_value("SELECT approved_variation_id FROM personas WHERE id = %s", (persona,)) == variation
    assert db.fetch_value("SELECT count(*) FROM media_outputs WHERE job_id = %s", (old_completed,)) == 1
    assert db.fetch_value("SELECT archived_at FROM generation_jobs WHERE id = %s", (recent_completed,)) is None
    # a second run finds nothing more to do
    again = maintenance.apply_retention(db, store, settings=SETTINGS, clock=clock)
    assert (again.deleted, again.archived) == (0, 0)


@pytest.mark.parametrize("batch", [1, 3])
def test_retention_is_batched(db: Database, store: LocalMediaStore, batch: int) -> None:
    clock = FrozenClock()
    for _ in range(5):
        finished_job(db, clock, "failed", 40)
    settings = maintenance.MaintenanceSettings(worker_function="w", batch_size=batch, max_batches=2)
    report = maintenance.apply_retention(db, store, settings=settings, clock=clock)
    assert report.deleted == min(5, batch * 2)
    assert db.fetch_value("SELECT count(*) FROM generation_jobs") == 5 - min(5, batch * 2)
