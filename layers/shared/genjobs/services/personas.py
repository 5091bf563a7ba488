"""Persona rules: create, read (with when regeneration is next allowed), soft delete."""

from __future__ import annotations

from datetime import timedelta
from uuid import UUID

from genjobs.data import personas as persona_data
from genjobs.db import Database
from genjobs.errors import Conflict, NotFound
from genjobs.models.personas import CreatePersonaRequest, Persona
from genjobs.ports import Clock


def create_persona(db: Database, merchant_id: str, request: CreatePersonaRequest) -> Persona:
    return persona_data.insert_persona(db, merchant_id, request.model_dump())


def get_persona(db: Database, merchant_id: str, persona_id: UUID, *, cooldown: timedelta, clock: Clock) -> Persona:
    persona = persona_data.find_persona(db, merchant_id, persona_id, cooldown=cooldown, now=clock())
    if persona is None:
        raise NotFound("Persona not found.", details={"persona_id": str(persona_id)})
    return persona


def delete_persona(db: Database, merchant_id: str, persona_id: UUID, *, clock: Clock) -> None:
    result = persona_data.soft_delete_persona(db, merchant_id, persona_id, clock())
    if result is None or not result["exists"]:
        raise NotFound("Persona not found.", details={"persona_id": str(persona_id)})
    if not result["deleted"]:
        raise Conflict(
            "The persona has an active job; cancel it or wait for it to finish before deleting.",
            details={"active_job_id": str(result["active_job_id"])},
        )
