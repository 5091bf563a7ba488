"""Retention deletes media too (issue 12, fault 9), on moto S3 under the real S3 adapter: a job deleted by
retention loses its objects, a persona deleted longer than the grace period loses its images and videos and
its rows; batched, idempotent, and nothing still shown is touched."""

from __future__ import annotations

from datetime import timedelta
from typing import Any
from uuid import UUID

from genjobs.adapters.s3 import S3MediaStore
from genjobs.db import Database
from genjobs.services import maintenance, personas

from tests.support.fakes import MEDIA_BUCKET, CountingS3, FailingDeletes, FrozenClock
from tests.support.scenarios import (
    approved_persona,
    failed_variations_job,
    persona_with_variations,
    start_job,
    video_output_key,
)

SETTINGS = maintenance.MaintenanceSettings(worker_function="w", retention_failed=timedelta(days=30),
                                           persona_purge_after=timedelta(days=30))


def keys_in_bucket(s3: Any) -> set[str]:
    return {o["Key"] for o in s3.list_objects_v2(Bucket=MEDIA_BUCKET).get("Contents", [])}


def keys_of_job(db: Database, job_id: UUID) -> set[str]:
    return {r["s3_key"] for r in db.fetch_all("SELECT s3_key FROM media_outputs WHERE job_id = %s", (job_id,))}


def fail_job_days_ago(db: Database, job_id: UUID, clock: FrozenClock, days: int) -> None:
    db.execute("UPDATE generation_jobs SET status = 'processing' WHERE id = %s AND status = 'queued'", (job_id,))
    db.execute("UPDATE generation_jobs SET status = 'failed', error_code = 'X' WHERE id = %s AND status <> 'failed'",
               (job_id,))
    db.execute("UPDATE generation_jobs SET completed_at = %s WHERE id = %s", (clock() - timedelta(days=days), job_id))


def video_of(db: Database, s3_store: S3MediaStore, job_id: UUID, state: str) -> str:
    """A video output recorded for `state` of `job_id` (the object in S3, the row, the persona's URL)."""
    key = video_output_key(job_id, state)
    stored = s3_store.put(key, b"\x00\x00\x00\x18ftypisom", "video/mp4")
    db.execute("INSERT INTO media_outputs (job_id, merchant_id, kind, state, s3_bucket, s3_key, url, content_type) "
               "SELECT id, merchant_id, 'video', %s, %s, %s, %s, 'video/mp4' FROM generation_jobs WHERE id = %s",
               (state, MEDIA_BUCKET, key, stored.url, job_id))
    return stored.url


def test_retention_deletes_media_of_deleted_jobs_and_purged_personas_and_keeps_what_is_shown(
        db: Database, s3: Any, s3_store: S3MediaStore) -> None:
    clock = FrozenClock()
    # Given a persona whose old variations job stored two images in S3 and then failed
    failed_persona, failed_job = failed_variations_job(db, "acme", s3_store, clock=clock)
    fail_job_days_ago(db, failed_job, clock, 31)
    failed_keys = keys_of_job(db, failed_job)
    assert len(failed_keys) == 2 and failed_keys <= keys_in_bucket(s3)
    # And an active persona whose old failed state-videos job made the persona's "idle" video (still shown)
    shown_persona, _ = approved_persona(db, "acme", s3_store, clock=clock)
    videos_job = start_job(db, "acme", shown_persona, clock=clock, job_type="state_videos", states=["idle", "talking"])
    url = video_of(db, s3_store, videos_job, "idle")
    db.execute("UPDATE personas SET video_states = jsonb_build_object('idle', %s::text) WHERE id = %s",
               (url, shown_persona))
    fail_job_days_ago(db, videos_job, clock, 31)
    # And a persona deleted 31 days ago (past the grace period) and one deleted 29 days ago, each with images
    gone_persona, gone_job, _ = persona_with_variations(db, "globex", s3_store, clock=clock)
    recent_persona, recent_job, _ = persona_with_variations(db, "globex", s3_store, clock=clock)
    personas.delete_persona(db, "globex", gone_persona, clock=clock)
    personas.delete_persona(db, "globex", recent_persona, clock=clock)
    db.execute("UPDATE personas SET deleted_at = %s WHERE id = %s", (clock() - timedelta(days=31), gone_persona))
    db.execute("UPDATE personas SET deleted_at = %s WHERE id = %s", (clock() - timedelta(days=29), recent_persona))
    gone_keys, recent_keys = keys_of_job(db, gone_job), keys_of_job(db, recent_job)
    charged = db.fetch_value("SELECT count(*) FROM usage_ledger WHERE job_id = %s", (gone_job,))

    # When the retention sweep runs
    report = maintenance.apply_retention(db, s3_store, settings=SETTINGS, clock=clock)

    # Then the failed job's images are gone from S3 with its rows
    bucket = keys_in_bucket(s3)
    assert not failed_keys & bucket
    assert db.fetch_value("SELECT count(*) FROM generation_jobs WHERE id = %s", (failed_job,)) == 0
    # And the failed videos job whose video the persona shows is kept, object and row
    assert video_output_key(videos_job, "idle") in bucket
    assert db.fetch_value("SELECT count(*) FROM generation_jobs WHERE id = %s", (videos_job,)) == 1
    # And the persona deleted past the grace period is purged: images gone, rows gone, the charge kept (billing)
    assert not gone_keys & bucket
    assert db.fetch_value("SELECT count(*) FROM personas WHERE id = %s", (gone_persona,)) == 0
    assert db.fetch_value("SELECT count(*) FROM generation_jobs WHERE persona_id = %s", (gone_persona,)) == 0
    assert db.fetch_value("SELECT count(*) FROM usage_ledger WHERE merchant_id = 'globex' AND job_id IS NULL "
                          "AND usage_key = %s", (f"job:{gone_job}",)) == charged == 1
    # And the persona inside the grace period keeps everything
    assert recent_keys <= bucket
    assert db.fetch_value("SELECT count(*) FROM personas WHERE id = %s", (recent_persona,)) == 1
    assert (report.deleted, report.personas_purged, report.media_deleted) == (1, 1, 5)
    assert failed_persona  # the failed job's persona itself is not deleted: it stays

    # When the sweep runs again, Then it finds nothing more (idempotent)
    again = maintenance.apply_retention(db, s3_store, settings=SETTINGS, clock=clock)
    assert (again.deleted, again.personas_purged, again.media_deleted) == (0, 0, 0)

    # When the grace period of the other persona ends, Then it goes too
    clock.advance(timedelta(days=2))
    later = maintenance.apply_retention(db, s3_store, settings=SETTINGS, clock=clock)
    assert later.personas_purged == 1 and not recent_keys & keys_in_bucket(s3)


def test_an_interrupted_or_failing_delete_is_finished_by_a_later_sweep(db: Database, s3: Any,
                                                                      s3_store: S3MediaStore) -> None:
    clock = FrozenClock()
    # Given a failed job past retention whose objects were deleted by a sweep that stopped before the rows
    _, job = failed_variations_job(db, "acme", s3_store, clock=clock)
    fail_job_days_ago(db, job, clock, 31)
    s3_store.delete(sorted(keys_of_job(db, job))[:1])

    # When the store cannot delete (S3 answers errors), Then the rows stay for the next sweep
    failing = maintenance.apply_retention(db, FailingDeletes(s3_store), settings=SETTINGS, clock=clock)
    assert failing.deleted == 0 and failing.errors
    assert db.fetch_value("SELECT count(*) FROM generation_jobs WHERE id = %s", (job,)) == 1

    # When a sweep runs with a working store, Then missing objects are no error and everything goes
    report = maintenance.apply_retention(db, s3_store, settings=SETTINGS, clock=clock)
    assert report.deleted == 1 and not report.errors
    assert not [k for k in keys_in_bucket(s3) if k.startswith(f"jobs/{job}/")]
    assert db.fetch_value("SELECT count(*) FROM media_outputs WHERE job_id = %s", (job,)) == 0


def test_s3_deletes_go_in_batches_of_at_most_1000_keys(s3: Any) -> None:
    # Given 1,500 objects in the bucket
    keys = [f"jobs/batch/{i:04d}.png" for i in range(1500)]
    for key in keys:
        s3.put_object(Bucket=MEDIA_BUCKET, Key=key, Body=b"x")
    counting = CountingS3(s3)

    # When the store deletes them (and one key twice, and one that does not exist)
    S3MediaStore(MEDIA_BUCKET, client=counting).delete([*keys, keys[0], "jobs/none/missing.png"])

    # Then DeleteObjects was sent twice, 1000 keys then the rest, and the bucket is empty
    assert counting.delete_batches == [1000, 501]
    assert not keys_in_bucket(s3)
