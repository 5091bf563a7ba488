"""SQL for generation jobs: starting, claiming, recording outputs, completing, failing.

Every worker write names the job's attempt and the status it expects (attempt fencing): a write from an
attempt that is no longer current, or for a job that was canceled, matches no row and changes nothing.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from decimal import Decimal
from typing import Any
from uuid import UUID

from psycopg.types.json import Jsonb

from genjobs.db import Database, Row


def start_job(
    db: Database,
    *,
    merchant_id: str,
    persona_id: UUID,
    job_type: str,
    variation_count: int | None,
    states: list[str] | None,
    prompt_variables: dict[str, str],
    idempotency_key: str | None,
    request_hash: str,
    default_hourly_limit: int,
    cooldown: timedelta,
    now: datetime,
    max_retries: int,
    builtin_variables: list[str],
    builtin_defaults: dict[str, str],
) -> dict[str, Any]:
    """All checks and the insert in one round trip (see sql/005_start_job_function.sql)."""
    result = db.fetch_value(
        "SELECT genjobs_start_job(%s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s)",
        (merchant_id, persona_id, job_type, variation_count, states, Jsonb(prompt_variables), idempotency_key,
         request_hash, default_hourly_limit, cooldown, now, max_retries, builtin_variables,
         Jsonb(builtin_defaults)),
    )
    assert isinstance(result, dict)
    return result


def claim_job(db: Database, job_id: UUID, now: datetime, lease: timedelta) -> Row | None:
    """queued -> processing with a new attempt and a lease; None when the job is not claimable
    (already claimed by a duplicate invoke, finished, canceled, or waiting out a retry backoff)."""
    return db.fetch_one(
        """
        WITH claimed AS (
            UPDATE generation_jobs
               SET status = 'processing', attempt = attempt + 1, lease_expires_at = %(now)s + %(lease)s,
                   current_step = 'starting', dispatched_at = coalesce(dispatched_at, %(now)s)
             WHERE id = %(job_id)s AND status = 'queued' AND available_at <= %(now)s
            RETURNING *
        )
        SELECT c.*, p.name AS persona_name, p.description AS persona_description,
               p.product_name AS persona_product_name, p.character_type AS persona_character_type,
               p.image_url AS persona_image_url,
               t.template AS template_text, t.variable_defaults AS template_defaults,
               m.unit_price_usd, m.pricing_unit, m.default_parameters AS model_parameters,
               -- the approved image's stored file: state videos start from it
               ao.s3_bucket AS persona_image_bucket, ao.s3_key AS persona_image_key,
               ao.content_type AS persona_image_content_type
          FROM claimed c
          JOIN personas p ON p.id = c.persona_id
          LEFT JOIN prompt_templates t ON t.id = c.prompt_template_id
          LEFT JOIN model_configurations m ON m.model_id = c.model_id
          LEFT JOIN character_variations av ON av.id = p.approved_variation_id
          LEFT JOIN media_outputs ao ON ao.id = av.media_output_id
        """,
        {"job_id": job_id, "now": now, "lease": lease},
    )


def record_variation(
    db: Database,
    *,
    job_id: UUID,
    attempt: int,
    index: int,
    seed: int,
    bucket: str,
    key: str,
    url: str,
    content_type: str,
    size_bytes: int,
    width: int,
    height: int,
    progress: int,
    step: str,
    lease_until: datetime,
    prompt: str,
) -> bool:
    """Store one generated image (media output + variation), move progress on and extend the lease, in
    one statement. False when the attempt is stale or the job is no longer processing."""
    row = db.fetch_one(
        """
        WITH job AS (
            UPDATE generation_jobs
               SET progress = greatest(progress, %(progress)s), current_step = %(step)s,
                   lease_expires_at = %(lease_until)s, prompt = coalesce(prompt, %(prompt)s)
             WHERE id = %(job_id)s AND attempt = %(attempt)s AND status = 'processing'
            RETURNING id, merchant_id, persona_id
        ), media AS (
            INSERT INTO media_outputs (job_id, merchant_id, kind, s3_bucket, s3_key, url, content_type,
                                       size_bytes, width, height)
            SELECT id, merchant_id, 'image', %(bucket)s, %(key)s, %(url)s, %(content_type)s, %(size)s,
                   %(width)s, %(height)s
              FROM job
            ON CONFLICT (s3_bucket, s3_key) DO UPDATE
               SET size_bytes = EXCLUDED.size_bytes, url = EXCLUDED.url
            RETURNING id
        ), variation AS (
            INSERT INTO character_variations (job_id, persona_id, merchant_id, variation_index, seed,
                                              media_output_id, image_url)
            SELECT job.id, job.persona_id, job.merchant_id, %(index)s, %(seed)s, media.id, %(url)s
              FROM job, media
            ON CONFLICT (job_id, variation_index) DO UPDATE
               SET seed = EXCLUDED.seed, media_output_id = EXCLUDED.media_output_id,
                   image_url = EXCLUDED.image_url
            RETURNING id
        )
        SELECT count(*) AS recorded FROM variation
        """,
        {"job_id": job_id, "attempt": attempt, "index": index, "seed": seed, "bucket": bucket, "key": key,
         "url": url, "content_type": content_type, "size": size_bytes, "width": width, "height": height,
         "progress": progress, "step": step, "lease_until": lease_until, "prompt": prompt},
    )
    return bool(row and row["recorded"])


def complete_variations_job(
    db: Database,
    *,
    job_id: UUID,
    attempt: int,
    now: datetime,
    quantity: int,
    unit_price: Decimal,
) -> Row | None:
    """Complete the job, hand the persona its variations and charge the ledger exactly once — one
    statement. Returns the completed job row (with `charged`), or None for a stale attempt."""
    cost = unit_price * quantity
    return db.fetch_one(
        """
        WITH job AS (
            UPDATE generation_jobs j
               SET status = 'completed', progress = 100, current_step = 'completed', cost_usd = %(cost)s,
                   variation_urls = coalesce((SELECT array_agg(v.image_url ORDER BY v.variation_index)
                                                FROM character_variations v WHERE v.job_id = j.id), '{}')
             WHERE j.id = %(job_id)s AND j.attempt = %(attempt)s AND j.status = 'processing'
            RETURNING j.*
        ), persona AS (
            UPDATE personas p
               SET status = CASE WHEN p.status IN ('draft', 'generating') THEN 'pending_approval' ELSE p.status END,
                   last_variations_completed_at = %(now)s,
                   generation_metadata = p.generation_metadata
                       || jsonb_build_object('last_variations_job_id', job.id)
              FROM job
             WHERE p.id = job.persona_id
            RETURNING p.id
        ), ledger AS (
            INSERT INTO usage_ledger (merchant_id, job_id, usage_key, billing_period, model_id, quantity,
                                      unit_price_usd, amount_usd)
            SELECT merchant_id, id, 'job:' || id, date_trunc('month', %(now)s AT TIME ZONE 'UTC')::date,
                   model_id, %(quantity)s, %(unit_price)s, %(cost)s
              FROM job
            ON CONFLICT (merchant_id, usage_key) DO NOTHING
            RETURNING id
        )
        SELECT job.*, (SELECT count(*) FROM ledger) AS charged, (SELECT count(*) FROM persona) AS persona_updated
          FROM job
        """,
        {"job_id": job_id, "attempt": attempt, "now": now, "quantity": quantity, "unit_price": unit_price,
         "cost": cost},
    )


def fail_or_retry_job(
    db: Database,
    *,
    job_id: UUID,
    attempt: int,
    retryable: bool,
    error_code: str,
    error_message: str,
    retry_at: datetime,
    expected_status: tuple[str, ...] = ("processing", "generating_videos"),
) -> Row | None:
    """A failed attempt: back to `queued` with retry_count + 1 and a backoff when the error is retryable
    and retries remain; otherwise `failed` with the error. One statement; None for a stale attempt."""
    return db.fetch_one(
        """
        WITH job AS (
            UPDATE generation_jobs
               SET status = CASE WHEN %(retryable)s AND retry_count < max_retries THEN 'queued' ELSE 'failed' END,
                   retry_count = retry_count + CASE WHEN %(retryable)s AND retry_count < max_retries
                                                    THEN 1 ELSE 0 END,
                   available_at = %(retry_at)s,
                   lease_expires_at = NULL,
                   error_code = %(code)s,
                   error_message = %(message)s,
                   current_step = CASE WHEN %(retryable)s AND retry_count < max_retries
                                       THEN 'waiting_to_retry' ELSE 'failed' END
             WHERE id = %(job_id)s AND attempt = %(attempt)s AND status = ANY(%(expected)s)
            RETURNING *
        ), persona AS (
            UPDATE personas p SET status = 'draft'
              FROM job
             WHERE p.id = job.persona_id AND job.status = 'failed' AND p.status = 'generating'
            RETURNING p.id
        )
        SELECT job.*, (SELECT count(*) FROM persona) AS persona_reset FROM job
        """,
        {"job_id": job_id, "attempt": attempt, "retryable": retryable, "code": error_code,
         "message": error_message[:2000], "retry_at": retry_at, "expected": list(expected_status)},
    )


def mark_dispatch_failed(db: Database, job_id: UUID, message: str) -> None:
    """Remember that the async invoke was not accepted (the re-dispatch sweep will retry it)."""
    db.execute(
        "UPDATE generation_jobs SET metadata = metadata || jsonb_build_object('dispatch_error', %s::text) "
        "WHERE id = %s AND status = 'queued'",
        (message[:500], job_id),
    )


def find_job(db: Database, merchant_id: str, job_id: UUID) -> Row | None:
    return db.fetch_one("SELECT * FROM generation_jobs WHERE id = %s AND merchant_id = %s", (job_id, merchant_id))
