"""SQL for personas. Every statement filters on merchant_id: another merchant's persona does not exist."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any
from uuid import UUID

from psycopg.types.json import Jsonb

from genjobs.data.answers import Outcome
from genjobs.db import Database
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


def delete_persona(db: Database, merchant_id: str, persona_id: UUID, now: datetime) -> Outcome:
    """Soft delete, unless the persona has an active job; the persona's row is locked, so a concurrent start
    and this delete apply one after the other (genjobs_delete_persona_v1, sql/020)."""
    return Outcome.model_validate(db.fetch_value("SELECT genjobs_delete_persona_v1(%s, %s, %s)",
                                                 (merchant_id, persona_id, now)))
