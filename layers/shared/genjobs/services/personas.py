"""Persona rules: create, read (with when regeneration is next allowed), soft delete."""

from __future__ import annotations

from datetime import timedelta
from uuid import UUID

from genjobs.data import personas as persona_data
from genjobs.db import Database
from genjobs.errors import NotFound
from genjobs.models.personas import CreatePersonaRequest, Persona
from genjobs.ports import Clock
from genjobs.services.outcomes import raise_refusal


def create_persona(db: Database, merchant_id: str, request: CreatePersonaRequest) -> Persona:
    return persona_data.insert_persona(db, merchant_id, request.model_dump())


def get_persona(db: Database, merchant_id: str, persona_id: UUID, *, cooldown: timedelta, clock: Clock) -> Persona:
    persona = persona_data.find_persona(db, merchant_id, persona_id, cooldown=cooldown, now=clock())
    if persona is None:
        raise NotFound("Persona not found.", details={"persona_id": str(persona_id)})
    return persona


def delete_persona(db: Database, merchant_id: str, persona_id: UUID, *, clock: Clock) -> None:
    raise_refusal(persona_data.delete_persona(db, merchant_id, persona_id, clock()), persona_id=persona_id)
