"""Maintenance sweeps: lease rescue, re-dispatch, retention with its media (and video polling, see
services.videos).

Each sweep works in bounded batches (FOR UPDATE SKIP LOCKED), so two sweeps running at once, or a sweep
and the workers, never handle the same job twice. Every sweep stops after `max_batches` batches so one
scheduled run stays short; whatever is left is picked up a minute later.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from datetime import timedelta
from uuid import UUID

from genjobs.data import jobs as job_data
from genjobs.data import maintenance as maintenance_data
from genjobs.data import videos as video_data
from genjobs.data import webhooks as webhook_data
from genjobs.db import Database, Row
from genjobs.db.outbox import note_webhooks_pending
from genjobs.ports import (
    Clock,
    FunctionInvoker,
    InvokeFailed,
    MediaDeleteFailed,
    MediaProvider,
    MediaStore,
    ProviderError,
)
from genjobs.services.worker.videos import output_key_for, record_video_output

logger = logging.getLogger("genjobs.maintenance")


@dataclass(frozen=True)
class MaintenanceSettings:
    worker_function: str
    redispatch_after: timedelta = timedelta(minutes=2)
    retention_failed: timedelta = timedelta(days=30)
    retention_archive: timedelta = timedelta(days=90)
    # a deleted persona's images and videos stay this long (an undo window for support), then go with its rows
    persona_purge_after: timedelta = timedelta(days=30)
    video_report_after: timedelta = timedelta(minutes=10)
    video_lease: timedelta = timedelta(minutes=30)
    batch_size: int = 100
    max_batches: int = 10


@dataclass
class SweepReport:
    rescued: int = 0
    timed_out: int = 0
    redispatched: int = 0
    dispatch_failures: int = 0
    deleted: int = 0
    archived: int = 0
    personas_purged: int = 0
    media_deleted: int = 0
    videos_checked: int = 0
    videos_completed: int = 0
    videos_failed: int = 0
    webhooks_due: int = 0
    errors: list[str] = field(default_factory=list)


def _dispatch(invoker: FunctionInvoker, function: str, job_ids: list[str], report: SweepReport) -> int:
    sent = 0
    for job_id in job_ids:
        try:
            invoker.invoke_async(function, {"action": "run_job", "job_id": job_id})
            sent += 1
        except InvokeFailed as exc:
            # the job stays queued with its dispatch stamped; the next sweep tries again after the threshold
            report.dispatch_failures += 1
            logger.warning("dispatch of job %s failed: %s", job_id, exc)
    return sent


def rescue_stale_jobs(db: Database, invoker: FunctionInvoker, *, settings: MaintenanceSettings, clock: Clock,
                      report: SweepReport | None = None) -> SweepReport:
    report = report or SweepReport()
    for _ in range(settings.max_batches):
        rows = maintenance_data.rescue_expired_leases(db, now=clock(), batch=settings.batch_size)
        requeued = [str(r["id"]) for r in rows if r["status"] == "queued"]
        report.rescued += len(requeued)
        report.timed_out += sum(1 for r in rows if r["status"] == "failed")
        _dispatch(invoker, settings.worker_function, requeued, report)
        if len(rows) < settings.batch_size:
            break
    return report


def redispatch_queued_jobs(db: Database, invoker: FunctionInvoker, *, settings: MaintenanceSettings, clock: Clock,
                           report: SweepReport | None = None) -> SweepReport:
    report = report or SweepReport()
    for _ in range(settings.max_batches):
        rows = maintenance_data.claim_dispatches(db, now=clock(), lost_after=settings.redispatch_after,
                                                 batch=settings.batch_size)
        report.redispatched += _dispatch(invoker, settings.worker_function, [str(r["id"]) for r in rows], report)
        if len(rows) < settings.batch_size:
            break
    return report


def _delete_media(store: MediaStore, rows: list[Row], what: str, report: SweepReport) -> list[UUID]:
    """Delete the media objects of `rows` (each `id`, `keys`); the ids whose objects are gone. When the store
    fails, none of the batch is deleted from the database: the next sweep tries again (deleting is idempotent)."""
    keys = [k for row in rows for k in row["keys"]]
    try:
        if keys:
            store.delete(keys)
    except MediaDeleteFailed as exc:
        report.errors.append(f"{what}: {exc}")
        logger.warning("retention kept %d %s whose media could not be deleted: %s", len(rows), what, exc)
        return []
    report.media_deleted += len(keys)
    return [row["id"] for row in rows]


def apply_retention(db: Database, store: MediaStore, *, settings: MaintenanceSettings, clock: Clock,
                    report: SweepReport | None = None) -> SweepReport:
    """Failed/canceled jobs past `retention_failed`, and personas deleted longer than `persona_purge_after`,
    go with their media objects (objects first, then rows: a repeated or interrupted sweep only repeats
    deletes of objects already gone); completed jobs past `retention_archive` are archived."""
    report = report or SweepReport()
    now = clock()
    before = now - settings.retention_failed
    for _ in range(settings.max_batches):
        rows = maintenance_data.expired_failed_jobs(db, before=before, bucket=store.bucket, batch=settings.batch_size)
        ids = _delete_media(store, rows, "jobs", report)
        report.deleted += maintenance_data.delete_failed_jobs(db, ids, before=before) if ids else 0
        if len(rows) < settings.batch_size or len(ids) < len(rows):
            break
    deleted_before = now - settings.persona_purge_after
    for _ in range(settings.max_batches):
        rows = maintenance_data.purgeable_personas(db, deleted_before=deleted_before, bucket=store.bucket,
                                                   batch=settings.batch_size)
        ids = _delete_media(store, rows, "personas", report)
        report.personas_purged += maintenance_data.purge_personas(db, ids, deleted_before=deleted_before) if ids else 0
        if len(rows) < settings.batch_size or len(ids) < len(rows):
            break
    for _ in range(settings.max_batches):
        archived = maintenance_data.archive_completed_jobs(db, before=now - settings.retention_archive, now=now,
                                                           batch=settings.batch_size)
        report.archived += archived
        if archived < settings.batch_size:
            break
    return report


def poll_stale_videos(db: Database, provider: MediaProvider, store: MediaStore, *, settings: MaintenanceSettings,
                      clock: Clock, report: SweepReport | None = None) -> SweepReport:
    """Ask Bedrock about invocations that have not reported through S3: Failed fails the job with
    PROVIDER_FAILED, or CONTENT_FILTERED when the failure message says so (the states already made stay),
    Completed is recorded as if its S3 event had come,
    InProgress is left alone until the next poll."""
    report = report or SweepReport()
    for _ in range(settings.max_batches):
        rows = maintenance_data.claim_video_polls(db, now=clock(), report_after=settings.video_report_after,
                                                  batch=settings.batch_size)
        for row in rows:
            report.videos_checked += 1
            try:
                status = provider.get_video_status(row["invocation_arn"])
            except ProviderError as exc:
                report.errors.append(f"{row['job_id']}/{row['state']}: {exc.code}")
                logger.warning("could not poll %s: %s", row["invocation_arn"], exc)
                continue
            if status.status == "Completed":
                bucket, key = output_key_for(row["invocation_arn"], row["output_s3_uri"])
                recorded = record_video_output(db, store, bucket=bucket, key=key, size=None, clock=clock,
                                               lease=settings.video_lease)
                report.videos_completed += recorded.outcome in ("recorded", "completed")
            elif status.status == "Failed":
                message = status.failure_message or "the video generation failed"
                video_data.record_invocation_failed(db, job_id=row["job_id"], attempt=row["attempt"],
                                                    state=row["state"], message=message)
                failed = job_data.fail_job(
                    db, job_id=row["job_id"], attempt=row["attempt"], expected=("generating_videos",),
                    retryable=False, error_code=status.failure_code or "PROVIDER_FAILED",
                    error_message=f"state {row['state']}: {message}", retry_at=clock(), now=clock())
                report.videos_failed += failed.outcome == "failed"
        if len(rows) < settings.batch_size:
            break
    return report


def webhook_backstop(db: Database, *, clock: Clock, report: SweepReport | None = None) -> SweepReport:
    """The outbox's backstop: when messages are due (a prompt delivery request was lost, a worker died
    mid-batch, a retry's time came), note it, and the entry asks the webhooks function to deliver."""
    report = report or SweepReport()
    report.webhooks_due = webhook_data.due_count(db, clock())
    if report.webhooks_due:
        note_webhooks_pending()
    return report
