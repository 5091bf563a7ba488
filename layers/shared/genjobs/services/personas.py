"""Persona rules: create, read (with when regeneration is next allowed), soft delete."""

from __future__ import annotations

from datetime import datetime, timedelta
from uuid import UUID

from genjobs.clock import Clock
from genjobs.data import personas as persona_data
from genjobs.db import Database, Row
from genjobs.errors import Conflict, NotFound
from genjobs.models.personas import CreatePersonaRequest, Persona


def _regeneration_available_at(row: Row, cooldown: timedelta, now: datetime) -> datetime | None:
    last = row.get("last_variations_completed_at")
    if last is None:
        return None
    available = last + cooldown
    return available if available > now else None


def create_persona(db: Database, merchant_id: str, request: CreatePersonaRequest) -> Persona:
    row = persona_data.insert_persona(db, merchant_id, request.model_dump())
    return Persona.from_row(row, None)


def get_persona(db: Database, merchant_id: str, persona_id: UUID, *, cooldown: timedelta, clock: Clock) -> Persona:
    row = persona_data.find_persona(db, merchant_id, persona_id)
    if row is None:
        raise NotFound("Persona not found.", details={"persona_id": str(persona_id)})
    return Persona.from_row(row, _regeneration_available_at(row, cooldown, clock()))


def delete_persona(db: Database, merchant_id: str, persona_id: UUID, *, clock: Clock) -> None:
    result = persona_data.soft_delete_persona(db, merchant_id, persona_id, clock())
    if result is None or not result["exists"]:
        raise NotFound("Persona not found.", details={"persona_id": str(persona_id)})
    if not result["deleted"]:
        raise Conflict(
            "The persona has an active job; cancel it or wait for it to finish before deleting.",
            details={"active_job_id": str(result["active_job_id"])},
        )
