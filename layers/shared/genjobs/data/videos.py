"""SQL for the video phase of a state-videos job: entering it and its Bedrock invocations (each write fenced
by attempt and status). A finished video is recorded by genjobs_record_state_v2 (genjobs.data.jobs)."""

from __future__ import annotations

from datetime import datetime
from typing import Any
from uuid import UUID

from psycopg.types.json import Jsonb

from genjobs.data.answers import note_pending
from genjobs.db import Database, Row
from genjobs.db.outbox import PENDING_COLUMN


def begin_video_phase(db: Database, *, job_id: UUID, attempt: int, lease_until: datetime,
                      metadata: dict[str, Any]) -> Row | None:
    """processing -> generating_videos for this attempt of a state-videos job, with the given lease; None for a
    stale attempt (or a variations job: only state videos have a video phase, found by the stateful test)."""
    row = db.fetch_one(
        """
        UPDATE generation_jobs
           SET status = 'generating_videos', current_step = 'starting_videos', lease_expires_at = %(lease)s,
               metadata = metadata || %(metadata)s
         WHERE id = %(job_id)s AND attempt = %(attempt)s AND status = 'processing' AND job_type = 'state_videos'
        RETURNING id, states_requested, states_generated, version, """ + PENDING_COLUMN + """ AS webhooks_pending
        """,
        {"job_id": job_id, "attempt": attempt, "lease": lease_until, "metadata": Jsonb(metadata)},
    )
    note_pending(row)
    return row


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
    row = db.fetch_one(
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
        SELECT count(*) AS updated, """ + PENDING_COLUMN + """ AS webhooks_pending FROM job
        """,
        {"job_id": job_id, "attempt": attempt, "state": state, "arn": invocation_arn, "step": step,
         "lease": lease_until},
    )
    note_pending(row)
    return bool(row and row["updated"])


def record_invocation_failed(db: Database, *, job_id: UUID, attempt: int, state: str, message: str) -> None:
    db.execute(
        "UPDATE video_invocations SET status = 'failed', failure_message = %s, completed_at = now() "
        "WHERE job_id = %s AND state = %s AND attempt = %s AND status IN ('starting', 'in_progress')",
        (message[:2000], job_id, state, attempt),
    )
