"""SQL of the maintenance sweeps. Each takes a bounded batch with FOR UPDATE SKIP LOCKED, so sweeps can run
concurrently with each other and with workers: a row is handled by exactly one of them."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import LiteralString
from uuid import UUID

from genjobs.data.answers import note_pending
from genjobs.db import Database, Row
from genjobs.db.outbox import PENDING_COLUMN


def rescue_expired_leases(db: Database, *, now: datetime, batch: int) -> list[Row]:
    """Jobs whose worker stopped renewing its lease: back to `queued` (a new attempt will claim them, and
    the old attempt's writes are refused) while retries remain, otherwise `failed` with TIMED_OUT
    (genjobs_rescue_jobs_v2)."""
    rows = db.fetch_all("SELECT id, status, attempt, retry_count, " + PENDING_COLUMN + " AS webhooks_pending "
                        "FROM genjobs_rescue_jobs_v2(%s, %s)", (now, batch))
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


# A failed or canceled job is kept while something of it is still shown: its variation is the persona's approved
# one, or one of its videos is the persona's video for a state (a failed state-videos job keeps the states it
# made). It goes with its persona (purge_personas).
_RETENTION_DUE: LiteralString = """
    j.status IN ('failed', 'canceled') AND j.completed_at < %(before)s
    AND NOT EXISTS (SELECT 1 FROM character_variations v JOIN personas p ON p.approved_variation_id = v.id
                     WHERE v.job_id = j.id)
    AND NOT EXISTS (SELECT 1 FROM media_outputs m JOIN personas p ON p.id = j.persona_id
                     WHERE m.job_id = j.id AND p.deleted_at IS NULL
                       AND m.url IN (SELECT s.value FROM jsonb_each_text(p.video_states) AS s))
"""


def expired_failed_jobs(db: Database, *, before: datetime, bucket: str, batch: int) -> list[Row]:
    """Failed and canceled jobs finished before `before` that retention may delete, oldest first, each with
    the keys of its media objects in `bucket` (`id`, `keys`). Reads only: the objects go first, then
    `delete_failed_jobs` deletes the rows."""
    return db.fetch_all(
        """
        SELECT j.id, coalesce((SELECT array_agg(m.s3_key ORDER BY m.s3_key) FROM media_outputs m
                                WHERE m.job_id = j.id AND m.s3_bucket = %(bucket)s), '{}') AS keys
          FROM generation_jobs j
         WHERE """ + _RETENTION_DUE + """
         ORDER BY j.completed_at
         LIMIT %(batch)s
        """,
        {"before": before, "bucket": bucket, "batch": batch},
    )


def delete_failed_jobs(db: Database, job_ids: list[UUID], *, before: datetime) -> int:
    """Delete these jobs (still due: the rule is checked again) with their outputs, variations and timeline."""
    return db.execute(
        """
        WITH due AS (
            SELECT j.id FROM generation_jobs j
             WHERE j.id = ANY (%(ids)s) AND """ + _RETENTION_DUE + """
               FOR UPDATE SKIP LOCKED
        )
        DELETE FROM generation_jobs j USING due WHERE j.id = due.id
        """,
        {"ids": job_ids, "before": before},
    )


def purgeable_personas(db: Database, *, deleted_before: datetime, bucket: str, batch: int) -> list[Row]:
    """Personas deleted before `deleted_before` (the grace period) with no active job, oldest deletion first,
    each with the keys of every media object of its jobs in `bucket` (`id`, `keys`). Reads only."""
    return db.fetch_all(
        """
        SELECT p.id, coalesce((SELECT array_agg(m.s3_key ORDER BY m.s3_key)
                                 FROM media_outputs m JOIN generation_jobs j ON j.id = m.job_id
                                WHERE j.persona_id = p.id AND m.s3_bucket = %(bucket)s), '{}') AS keys
          FROM personas p
         WHERE p.deleted_at < %(before)s
           AND NOT EXISTS (SELECT 1 FROM generation_jobs j
                            WHERE j.persona_id = p.id AND j.status IN ('queued', 'processing', 'generating_videos'))
         ORDER BY p.deleted_at
         LIMIT %(batch)s
        """,
        {"before": deleted_before, "bucket": bucket, "batch": batch},
    )


def purge_personas(db: Database, persona_ids: list[UUID], *, deleted_before: datetime) -> int:
    """Purge these personas and all their jobs (genjobs_purge_personas_v1); returns how many went."""
    return int(db.fetch_value("SELECT genjobs_purge_personas_v1(%s, %s)", (persona_ids, deleted_before)) or 0)


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
