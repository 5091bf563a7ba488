"""Persona rules: create (idempotent with a key), read (with when regeneration is next allowed), list
(keyset), change, soft delete."""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from datetime import timedelta
from uuid import UUID

from genjobs.data import personas as persona_data
from genjobs.db import Database
from genjobs.errors import BadRequest, NotFound, ValidationFailed
from genjobs.models.jobs import DEFAULT_PAGE_SIZE, MAX_PAGE_SIZE
from genjobs.models.personas import CreatePersonaRequest, Persona, PersonaPage, PersonaStatus, UpdatePersonaRequest
from genjobs.ports import Clock, CursorKeys
from genjobs.services import cursors
from genjobs.services.jobs import validate_idempotency_key
from genjobs.services.outcomes import raise_refusal


@dataclass(frozen=True)
class CreatedPersona:
    persona: Persona
    replayed: bool


def create_persona(db: Database, merchant_id: str, request: CreatePersonaRequest, *,
                   idempotency_key: str | None = None) -> CreatedPersona:
    """Create a persona; with an Idempotency-Key, a retried request answers the persona the first one created
    (a different request with the same key is a 409)."""
    fields = request.model_dump()
    key = validate_idempotency_key(idempotency_key)
    request_hash = hashlib.sha256(json.dumps(fields, sort_keys=True).encode()).hexdigest() if key else None
    answer = persona_data.create_persona(db, merchant_id, fields, idempotency_key=key, request_hash=request_hash)
    raise_refusal(answer, persona_id=answer.get("persona_id"))
    return CreatedPersona(persona=Persona.model_validate(answer.get("persona")), replayed=answer.outcome == "replayed")


def get_persona(db: Database, merchant_id: str, persona_id: UUID, *, cooldown: timedelta, clock: Clock) -> Persona:
    persona = persona_data.find_persona(db, merchant_id, persona_id, cooldown=cooldown, now=clock())
    if persona is None:
        raise NotFound("Persona not found.", details={"persona_id": str(persona_id)})
    return persona


def list_personas(db: Database, merchant_id: str, *, status: PersonaStatus | None = None,
                  limit: int = DEFAULT_PAGE_SIZE, cursor: str | None = None, cooldown: timedelta,
                  clock: Clock, cursor_keys: CursorKeys) -> PersonaPage:
    """The merchant's personas (deleted ones are gone), newest first, keyset paged: rows created while a client
    pages never shift a page."""
    if not 1 <= limit <= MAX_PAGE_SIZE:
        raise ValidationFailed(f"limit must be between 1 and {MAX_PAGE_SIZE}.")
    scope = {"list": "personas", "status": status}
    after = None
    if cursor is not None:
        created_at, key = cursors.decode_cursor(cursor_keys, merchant_id, cursor, scope)
        try:
            after = (created_at, UUID(key))
        except ValueError as exc:
            raise BadRequest("The cursor is not valid; start again without it.",
                             details={"parameter": "cursor"}) from exc
    rows = persona_data.list_personas(db, merchant_id, status=status, after=after, limit=limit + 1,
                                      cooldown=cooldown, now=clock())
    page = rows[:limit]
    next_cursor = (cursors.encode_cursor(cursor_keys, merchant_id, page[-1].created_at, str(page[-1].id), scope)
                   if len(rows) > limit else None)
    return PersonaPage(items=page, next_cursor=next_cursor)


def update_persona(db: Database, merchant_id: str, persona_id: UUID, request: UpdatePersonaRequest, *,
                   cooldown: timedelta, clock: Clock) -> Persona:
    """Change a persona's descriptive fields; another merchant's or a deleted persona is not found."""
    persona = persona_data.update_persona(db, merchant_id, persona_id, request.changes(), cooldown=cooldown,
                                          now=clock())
    if persona is None:
        raise NotFound("Persona not found.", details={"persona_id": str(persona_id)})
    return persona


def delete_persona(db: Database, merchant_id: str, persona_id: UUID, *, clock: Clock) -> None:
    raise_refusal(persona_data.delete_persona(db, merchant_id, persona_id, clock()), persona_id=persona_id)
