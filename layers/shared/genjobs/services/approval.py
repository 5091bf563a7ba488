"""Variations and their approval.

An approval is one round trip (a plpgsql function, sql/006_approval.sql) that locks the persona first, so
concurrent approvals of one persona apply one at a time: exactly one variation is approved at any moment
and the persona always points at it. Approving the approved variation again is a no-op.
"""

from __future__ import annotations

from datetime import timedelta
from uuid import UUID

from genjobs.data import approval as approval_data
from genjobs.db import Database
from genjobs.errors import NotFound
from genjobs.models.approval import Variation, VariationList
from genjobs.models.personas import Persona
from genjobs.ports import Clock
from genjobs.services.outcomes import raise_refusal


def list_variations(db: Database, merchant_id: str, persona_id: UUID, *, job_id: UUID | None = None) -> VariationList:
    rows = approval_data.list_variations(db, merchant_id, persona_id, job_id)
    if not rows:
        raise NotFound("Persona not found.", details={"persona_id": str(persona_id)})
    first = rows[0]
    if job_id is not None and first["job_id"] is None:
        raise NotFound("No variations job with this id for the persona.", details={"job_id": str(job_id)})
    return VariationList(
        persona_id=first["persona_id"],
        approved_variation_id=first["approved_variation_id"],
        job_id=first["job_id"],
        job_status=first["job_status"],
        items=[Variation.model_validate(r) for r in rows if r["variation_id"] is not None],
    )


def approve_variation(db: Database, merchant_id: str, persona_id: UUID, variation_id: UUID, *,
                      cooldown: timedelta, clock: Clock) -> tuple[Persona, bool]:
    """Approve the variation; returns (persona, changed). changed is False for a repeated approval."""
    answer = approval_data.approve_variation(db, merchant_id=merchant_id, persona_id=persona_id,
                                             variation_id=variation_id, now=clock(), cooldown=cooldown)
    raise_refusal(answer, persona_id=persona_id, variation_id=variation_id)
    if answer.outcome not in ("approved", "unchanged"):
        raise RuntimeError(f"unexpected approval outcome {answer.outcome!r}")
    return Persona.model_validate(answer.get("persona")), answer.outcome == "approved"
