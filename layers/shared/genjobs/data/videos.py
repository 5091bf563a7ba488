"""SQL for state videos: the worker's video phase (fenced by attempt and status) and the S3 completion.

`record_video_output` is the whole completion path in one statement: it appends the state once, records
the media output (unique bucket + key: a duplicate event inserts nothing), points the persona's
video_states entry at the new video, marks the state's invocation completed, moves progress to
generated/requested, and when the last state arrives completes the job with its cost and charges the
ledger (usage_key 'job:<id>', ON CONFLICT DO NOTHING). The job row is updated first and locked by that
update, so concurrent events for one job apply one after another, each on the latest version of the row:
every state is appended once and exactly one event completes the job.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any
from uuid import UUID

from psycopg.types.json import Jsonb

from genjobs.data.progress import NEW_STATES, STATES_PROGRESS
from genjobs.db import Database, Row


def begin_video_phase(db: Database, *, job_id: UUID, attempt: int, lease_until: datetime,
                      metadata: dict[str, Any]) -> Row | None:
    """processing -> generating_videos for this attempt, with the video lease; None for a stale attempt."""
    return db.fetch_one(
        """
        UPDATE generation_jobs
           SET status = 'generating_videos', current_step = 'starting_videos', lease_expires_at = %(lease)s,
               metadata = metadata || %(metadata)s
         WHERE id = %(job_id)s AND attempt = %(attempt)s AND status = 'processing'
        RETURNING id, states_requested, states_generated, version
        """,
        {"job_id": job_id, "attempt": attempt, "lease": lease_until, "metadata": Jsonb(metadata)},
    )


def record_invocation_starting(db: Database, *, job_id: UUID, attempt: int, state: str, token: str,
                               output_s3_uri: str) -> bool:
    """Note the invocation about to start (so a crash between start and record leaves a trace for the
    maintenance sweep); False when the attempt is stale or the job no longer generating videos."""
    inserted = db.fetch_value(
        """
        WITH job AS (
            SELECT id FROM generation_jobs
             WHERE id = %(job_id)s AND attempt = %(attempt)s AND status = 'generating_videos'
        ), row AS (
            INSERT INTO video_invocations (job_id, state, attempt, client_request_token, output_s3_uri, status)
            SELECT id, %(state)s, %(attempt)s, %(token)s, %(uri)s, 'starting' FROM job
            ON CONFLICT (job_id, state, attempt) DO UPDATE
               SET client_request_token = EXCLUDED.client_request_token, output_s3_uri = EXCLUDED.output_s3_uri
            RETURNING 1
        )
        SELECT count(*) FROM row
        """,
        {"job_id": job_id, "attempt": attempt, "state": state, "token": token, "uri": output_s3_uri},
    )
    return bool(inserted)


def record_invocation_started(db: Database, *, job_id: UUID, attempt: int, state: str, invocation_arn: str,
                              step: str, lease_until: datetime) -> bool:
    """Store the invocation ARN, move the job's step on and extend its lease, in one statement; False for a
    stale attempt or a job that is no longer generating videos (canceled meanwhile)."""
    updated = db.fetch_value(
        """
        WITH job AS (
            UPDATE generation_jobs
               SET current_step = %(step)s, lease_expires_at = greatest(lease_expires_at, %(lease)s)
             WHERE id = %(job_id)s AND attempt = %(attempt)s AND status = 'generating_videos'
            RETURNING id
        ), invocation AS (
            UPDATE video_invocations v
               SET invocation_arn = %(arn)s, status = 'in_progress'
              FROM job
             WHERE v.job_id = job.id AND v.state = %(state)s AND v.attempt = %(attempt)s AND v.status = 'starting'
            RETURNING 1
        )
        SELECT count(*) FROM job
        """,
        {"job_id": job_id, "attempt": attempt, "state": state, "arn": invocation_arn, "step": step,
         "lease": lease_until},
    )
    return bool(updated)


def record_invocation_failed(db: Database, *, job_id: UUID, attempt: int, state: str, message: str) -> None:
    db.execute(
        "UPDATE video_invocations SET status = 'failed', failure_message = %s, completed_at = now() "
        "WHERE job_id = %s AND state = %s AND attempt = %s AND status IN ('starting', 'in_progress')",
        (message[:2000], job_id, state, attempt),
    )


_DURATION = """coalesce((j.metadata ->> 'video_duration_seconds')::numeric,
                        (SELECT (m.default_parameters ->> 'durationSeconds')::numeric
                           FROM model_configurations m WHERE m.model_id = j.model_id), 6)"""
_UNIT_PRICE = "coalesce((SELECT m.unit_price_usd FROM model_configurations m WHERE m.model_id = j.model_id), 0)"
_DONE = f"(cardinality({NEW_STATES}) >= cardinality(j.states_requested))"

_RECORD_VIDEO_OUTPUT = f"""
WITH target AS (
    SELECT id, status FROM generation_jobs WHERE id = %(job_id)s
), job AS (
    UPDATE generation_jobs j
       SET states_generated = {NEW_STATES},
           progress = greatest(j.progress, {STATES_PROGRESS}),
           current_step = CASE WHEN {_DONE} THEN 'completed'
                               ELSE 'generated_' || cardinality({NEW_STATES}) || '_of_'
                                    || cardinality(j.states_requested) || '_states' END,
           cost_usd = CASE WHEN {_DONE}
                           THEN {_UNIT_PRICE} * cardinality(j.states_requested) * {_DURATION}
                           ELSE j.cost_usd END,
           status = CASE WHEN {_DONE} THEN 'completed' ELSE j.status END,
           metadata = j.metadata || jsonb_build_object('video_duration_seconds', {_DURATION},
                                                       'video_unit_price_usd', {_UNIT_PRICE})
     WHERE j.id = %(job_id)s AND j.status = 'generating_videos' AND %(state)s = ANY (j.states_requested)
    RETURNING j.id, j.merchant_id, j.persona_id, j.model_id, j.status, j.progress, j.states_requested,
              j.states_generated, j.cost_usd, j.version,
              (j.metadata ->> 'video_duration_seconds')::numeric AS duration_seconds,
              (j.metadata ->> 'video_unit_price_usd')::numeric AS unit_price_usd
), media AS (
    INSERT INTO media_outputs (job_id, merchant_id, kind, state, s3_bucket, s3_key, url, content_type, size_bytes,
                               duration_seconds)
    SELECT id, merchant_id, 'video', %(state)s, %(bucket)s, %(key)s, %(url)s, 'video/mp4', %(size)s, duration_seconds
      FROM job
    ON CONFLICT (s3_bucket, s3_key) DO NOTHING
    RETURNING id
), persona AS (
    UPDATE personas p SET video_states = p.video_states || jsonb_build_object(%(state)s::text, %(url)s::text)
      FROM job, media
     WHERE p.id = job.persona_id
    RETURNING p.id
), invocation AS (
    UPDATE video_invocations v SET status = 'completed', completed_at = %(now)s
      FROM job
     WHERE v.job_id = job.id AND v.state = %(state)s AND v.status IN ('starting', 'in_progress')
    RETURNING 1
), ledger AS (
    INSERT INTO usage_ledger (merchant_id, job_id, usage_key, billing_period, model_id, quantity, unit_price_usd,
                              amount_usd, details)
    SELECT merchant_id, id, 'job:' || id, date_trunc('month', %(now)s AT TIME ZONE 'UTC')::date, model_id,
           cardinality(states_requested) * duration_seconds, unit_price_usd, cost_usd,
           jsonb_build_object('states', cardinality(states_requested), 'seconds_per_state', duration_seconds)
      FROM job
     WHERE status = 'completed'
    ON CONFLICT (merchant_id, usage_key) DO NOTHING
    RETURNING id
)
SELECT (SELECT status FROM target) AS before_status, job.id IS NOT NULL AS applied, job.status, job.progress,
       job.states_generated, job.states_requested, job.cost_usd, job.version,
       (SELECT count(*) FROM media) AS media_recorded, (SELECT count(*) FROM ledger) AS charged
  FROM (SELECT 1) AS one LEFT JOIN job ON true
"""


def record_video_output(db: Database, *, job_id: UUID, state: str, bucket: str, key: str, url: str, size: int | None,
                        now: datetime) -> Row:
    row = db.fetch_one(
        _RECORD_VIDEO_OUTPUT,
        {"job_id": job_id, "state": state, "bucket": bucket, "key": key, "url": url, "size": size, "now": now},
    )
    assert row is not None
    return row

