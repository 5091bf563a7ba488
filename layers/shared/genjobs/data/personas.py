"""SQL for personas. Every statement filters on merchant_id: another merchant's persona does not exist."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any
from uuid import UUID

from psycopg import sql

from genjobs.data.answers import Outcome
from genjobs.db import Database
from genjobs.models.personas import Persona

# The fields PATCH /personas/{id} may change: the only names that can reach the SQL text.
UPDATABLE = ("name", "description", "product_name", "character_type")

_PERSONA_COLUMNS = """id, merchant_id, name, description, product_name, character_type, status,
    approved_variation_id, image_url, video_states, generation_metadata, version, created_at, updated_at"""


def create_persona(db: Database, merchant_id: str, fields: dict[str, Any], *, idempotency_key: str | None,
                   request_hash: str | None) -> Outcome:
    """Create a persona (the merchant provisioned), or replay the one an Idempotency-Key created
    (genjobs_create_persona_v1, sql/061): one round trip."""
    return Outcome.model_validate(db.fetch_value(
        "SELECT genjobs_create_persona_v1(%s, %s, %s, %s, %s, %s, %s)",
        (merchant_id, fields["name"], fields.get("description"), fields.get("product_name"),
         fields.get("character_type"), idempotency_key, request_hash)))


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


def list_personas(db: Database, merchant_id: str, *, status: str | None, after: tuple[datetime, UUID] | None,
                  limit: int, cooldown: timedelta, now: datetime) -> list[Persona]:
    """The merchant's personas newest first (personas_merchant_created_idx), after a keyset position."""
    return db.fetch_all(
        f"SELECT {_PERSONA_COLUMNS}, "
        "genjobs_regeneration_available_at_v1(last_variations_completed_at, %(cooldown)s, %(now)s) "
        "AS regeneration_available_at "
        "FROM personas WHERE merchant_id = %(merchant_id)s AND deleted_at IS NULL "
        "AND (%(status)s::text IS NULL OR status = %(status)s::text) "
        "AND (%(after_at)s::timestamptz IS NULL OR (created_at, id) < (%(after_at)s::timestamptz, %(after_id)s::uuid)) "
        "ORDER BY created_at DESC, id DESC LIMIT %(limit)s",
        {"merchant_id": merchant_id, "status": status, "after_at": after[0] if after else None,
         "after_id": after[1] if after else None, "limit": limit, "cooldown": cooldown, "now": now},
        row=Persona,
    )


def update_persona(db: Database, merchant_id: str, persona_id: UUID, changes: dict[str, Any], *,
                   cooldown: timedelta, now: datetime) -> Persona | None:
    """Change the named fields of a persona that is this merchant's and not deleted (None otherwise), and
    answer it, in one statement (the personas_touch trigger bumps version and updated_at)."""
    unknown = set(changes) - set(UPDATABLE)
    if unknown or not changes:
        raise ValueError(f"unsupported persona changes: {sorted(unknown) or 'none'}")
    assignments = sql.SQL(", ").join(
        sql.SQL("{} = {}").format(sql.Identifier(name), sql.Placeholder(name)) for name in UPDATABLE if name in changes)
    query = sql.SQL(
        "UPDATE personas SET {assignments} "
        "WHERE id = %(persona_id)s AND merchant_id = %(merchant_id)s AND deleted_at IS NULL "
        "RETURNING {columns}, "
        "genjobs_regeneration_available_at_v1(last_variations_completed_at, %(cooldown)s, %(now)s) "
        "AS regeneration_available_at"
    ).format(assignments=assignments, columns=sql.SQL(_PERSONA_COLUMNS))
    return db.fetch_one(query, {**changes, "persona_id": persona_id, "merchant_id": merchant_id,
                                "cooldown": cooldown, "now": now}, row=Persona)
