"""SQL for personas. Every statement filters on merchant_id: another merchant's persona does not exist."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any
from uuid import UUID

from psycopg.types.json import Jsonb

from genjobs.db import Database, Row
from genjobs.models.personas import Persona

_PERSONA_COLUMNS = """id, merchant_id, name, description, product_name, character_type, status,
    approved_variation_id, image_url, video_states, generation_metadata, version, created_at, updated_at"""


def insert_persona(db: Database, merchant_id: str, fields: dict[str, Any]) -> Persona:
    """Create a persona, provisioning the merchant in the same statement."""
    row = db.fetch_one(
        f"""
        WITH merchant AS (
            INSERT INTO merchants (id) VALUES (%(merchant_id)s) ON CONFLICT (id) DO NOTHING
        )
        INSERT INTO personas (merchant_id, name, description, product_name, character_type, generation_metadata)
        VALUES (%(merchant_id)s, %(name)s, %(description)s, %(product_name)s, %(character_type)s, %(metadata)s)
        RETURNING {_PERSONA_COLUMNS}
        """,
        {**fields, "merchant_id": merchant_id, "metadata": Jsonb({})},
        row=Persona,
    )
    assert row is not None
    return row


def find_persona(db: Database, merchant_id: str, persona_id: UUID, *, cooldown: timedelta,
                 now: datetime) -> Persona | None:
    return db.fetch_one(
        f"SELECT {_PERSONA_COLUMNS}, "
        "genjobs_regeneration_available_at_v1(last_variations_completed_at, %s, %s) AS regeneration_available_at "
        "FROM personas WHERE id = %s AND merchant_id = %s AND deleted_at IS NULL",
        (cooldown, now, persona_id, merchant_id), row=Persona,
    )


def soft_delete_persona(db: Database, merchant_id: str, persona_id: UUID, now: datetime) -> Row | None:
    """Mark the persona deleted unless it has an active job. Returns {deleted, exists, active_job_id}."""
    return db.fetch_one(
        """
        WITH target AS (
            SELECT p.id,
                   (SELECT j.id FROM generation_jobs j
                     WHERE j.persona_id = p.id AND j.status IN ('queued', 'processing', 'generating_videos')
                     LIMIT 1) AS active_job_id
              FROM personas p
             WHERE p.id = %(persona_id)s AND p.merchant_id = %(merchant_id)s AND p.deleted_at IS NULL
        ), deleted AS (
            UPDATE personas p SET deleted_at = %(now)s
              FROM target t
             WHERE p.id = t.id AND t.active_job_id IS NULL
            RETURNING p.id
        )
        SELECT EXISTS (SELECT 1 FROM deleted) AS deleted,
               EXISTS (SELECT 1 FROM target) AS exists,
               (SELECT active_job_id FROM target) AS active_job_id
        """,
        {"persona_id": persona_id, "merchant_id": merchant_id, "now": now},
    )
