"""SQL for variations and their approval. Every statement filters on merchant_id."""

from __future__ import annotations

from datetime import datetime, timedelta
from uuid import UUID

from genjobs.data.answers import Outcome
from genjobs.db import Database, Row


def list_variations(db: Database, merchant_id: str, persona_id: UUID, job_id: UUID | None) -> list[Row]:
    """The variations of the persona's latest variations job (or of `job_id`), in one statement.

    No row: the persona is not this merchant's (or deleted). One row with `job_id` NULL: the persona has no
    such job. Otherwise one row per variation (variation columns NULL when the job has none yet)."""
    return db.fetch_all(
        """
        WITH persona AS (
            SELECT id, approved_variation_id FROM personas
             WHERE id = %(persona_id)s AND merchant_id = %(merchant_id)s AND deleted_at IS NULL
        ), job AS (
            SELECT j.id, j.status FROM generation_jobs j, persona
             WHERE j.persona_id = persona.id AND j.merchant_id = %(merchant_id)s
               AND j.job_type = 'character_variations'
               AND (%(job_id)s::uuid IS NULL OR j.id = %(job_id)s::uuid)
             ORDER BY j.created_at DESC, j.id DESC
             LIMIT 1
        )
        SELECT persona.id AS persona_id, persona.approved_variation_id, job.id AS job_id, job.status AS job_status,
               v.id AS variation_id, v.variation_index, v.seed, v.image_url, v.approved, v.approved_at, v.created_at
          FROM persona
          LEFT JOIN job ON true
          LEFT JOIN character_variations v ON v.job_id = job.id AND v.merchant_id = %(merchant_id)s
         ORDER BY v.variation_index
        """,
        {"merchant_id": merchant_id, "persona_id": persona_id, "job_id": job_id},
    )


def approve_variation(db: Database, *, merchant_id: str, persona_id: UUID, variation_id: UUID, now: datetime,
                      cooldown: timedelta) -> Outcome:
    """Every rule and write of an approval in one round trip (genjobs_approve_variation_v2, sql/013)."""
    return Outcome.model_validate(db.fetch_value(
        "SELECT genjobs_approve_variation_v2(%s, %s, %s, %s, %s)",
        (merchant_id, persona_id, variation_id, now, cooldown),
    ))
