"""SQL of the maintenance sweeps. Each takes a bounded batch with FOR UPDATE SKIP LOCKED, so sweeps can run
concurrently with each other and with workers: a row is handled by exactly one of them."""

from __future__ import annotations

from datetime import datetime, timedelta

from genjobs.data.answers import note_pending
from genjobs.db import Database, Row
from genjobs.db.outbox import PENDING_COLUMN


def rescue_expired_leases(db: Database, *, now: datetime, batch: int) -> list[Row]:
    """Jobs whose worker stopped renewing its lease: back to `queued` (a new attempt will claim them, and
    the old attempt's writes are refused) while retries remain, otherwise `failed` with TIMED_OUT
    (genjobs_rescue_jobs_v1)."""
    rows = db.fetch_all("SELECT id, status, attempt, retry_count, " + PENDING_COLUMN + " AS webhooks_pending "
                        "FROM genjobs_rescue_jobs_v1(%s, %s)", (now, batch))
    for row in rows[:1]:
        note_pending(row)
    return rows


def claim_dispatches(db: Database, *, now: datetime, lost_after: timedelta, batch: int) -> list[Row]:
    """Queued jobs due a (re-)dispatch: available since their last dispatch (a retry's backoff elapsed),
    or dispatched long ago and still queued (the invoke was lost). Stamps the dispatch before invoking."""
    return db.fetch_all(
        """
        WITH due AS (
            SELECT id FROM generation_jobs
             WHERE status = 'queued' AND available_at <= %(now)s
               AND (last_dispatch_at IS NULL OR last_dispatch_at < available_at
                    OR last_dispatch_at <= %(now)s - %(lost_after)s)
             ORDER BY available_at
             LIMIT %(batch)s
             FOR UPDATE SKIP LOCKED
        )
        UPDATE generation_jobs j
           SET last_dispatch_at = %(now)s, dispatch_count = j.dispatch_count + 1
          FROM due
         WHERE j.id = due.id
        RETURNING j.id, j.dispatch_count
        """,
        {"now": now, "lost_after": lost_after, "batch": batch},
    )


def delete_expired_failed_jobs(db: Database, *, before: datetime, batch: int) -> int:
    """Failed and canceled jobs finished before `before`, with their outputs, variations and timeline."""
    return db.execute(
        """
        WITH due AS (
            SELECT j.id FROM generation_jobs j
             WHERE j.status IN ('failed', 'canceled') AND j.completed_at < %(before)s
               AND NOT EXISTS (SELECT 1 FROM character_variations v
                                 JOIN personas p ON p.approved_variation_id = v.id
                                WHERE v.job_id = j.id)
             ORDER BY j.completed_at
             LIMIT %(batch)s
             FOR UPDATE SKIP LOCKED
        )
        DELETE FROM generation_jobs j USING due WHERE j.id = due.id
        """,
        {"before": before, "batch": batch},
    )


def archive_completed_jobs(db: Database, *, before: datetime, now: datetime, batch: int) -> int:
    """Fold the timeline of completed jobs finished before `before` into job_archives. The job row,
    outputs and variations stay: personas keep referring to them."""
    archived = db.fetch_value(
        """
        WITH due AS (
            SELECT j.* FROM generation_jobs j
             WHERE j.status = 'completed' AND j.archived_at IS NULL AND j.completed_at < %(before)s
             ORDER BY j.completed_at
             LIMIT %(batch)s
             FOR UPDATE SKIP LOCKED
        ), events AS (
            DELETE FROM job_events e USING due WHERE e.job_id = due.id
            RETURNING e.*
        ), archived AS (
            INSERT INTO job_archives (job_id, merchant_id, job, events, archived_at)
            SELECT due.id, due.merchant_id, to_jsonb(due),
                   coalesce((SELECT jsonb_agg(to_jsonb(e) ORDER BY e.id) FROM events e WHERE e.job_id = due.id),
                            '[]'::jsonb),
                   %(now)s
              FROM due
            ON CONFLICT (job_id) DO NOTHING
            RETURNING job_id
        ), marked AS (
            UPDATE generation_jobs j SET archived_at = %(now)s FROM archived a WHERE j.id = a.job_id
            RETURNING j.id
        )
        SELECT count(*) FROM marked
        """,
        {"before": before, "batch": batch, "now": now},
    )
    return int(archived or 0)


def claim_video_polls(db: Database, *, now: datetime, report_after: timedelta, batch: int) -> list[Row]:
    """In-progress invocations of the current attempt of jobs still generating videos, started more than
    `report_after` ago and not polled within that time either. Stamped as polled before Bedrock is asked,
    so a concurrent sweep skips them."""
    return db.fetch_all(
        """
        WITH due AS (
            SELECT v.job_id, v.state, v.attempt
              FROM video_invocations v
              JOIN generation_jobs j ON j.id = v.job_id AND j.attempt = v.attempt
             WHERE v.status = 'in_progress' AND v.invocation_arn IS NOT NULL
               AND j.status = 'generating_videos'
               AND v.started_at <= %(now)s - %(after)s
               AND (v.last_polled_at IS NULL OR v.last_polled_at <= %(now)s - %(after)s)
             ORDER BY v.started_at
             LIMIT %(batch)s
             FOR UPDATE OF v SKIP LOCKED
        )
        UPDATE video_invocations v
           SET last_polled_at = %(now)s
          FROM due
         WHERE (v.job_id, v.state, v.attempt) = (due.job_id, due.state, due.attempt)
        RETURNING v.job_id, v.state, v.attempt, v.invocation_arn, v.output_s3_uri
        """,
        {"now": now, "after": report_after, "batch": batch},
    )
