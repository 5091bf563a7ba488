"""Variations and their approval.

An approval is one round trip (a plpgsql function, sql/006_approval.sql) that locks the persona first, so
concurrent approvals of one persona apply one at a time: exactly one variation is approved at any moment
and the persona always points at it. Approving the approved variation again is a no-op.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any
from uuid import UUID

from genjobs.clock import Clock
from genjobs.data import approval as approval_data
from genjobs.db import Database
from genjobs.errors import Conflict, NotFound
from genjobs.models.approval import Variation, VariationList
from genjobs.models.personas import Persona


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
        items=[Variation.from_row(r) for r in rows if r["variation_id"] is not None],
    )


def _persona(document: dict[str, Any], cooldown: timedelta, now: datetime) -> Persona:
    row = dict(document)
    last = row.get("last_variations_completed_at")
    available = None
    if last is not None:
        available_at = datetime.fromisoformat(str(last)) + cooldown
        available = available_at if available_at > now else None
    return Persona.from_row(row, available)


def approve_variation(db: Database, merchant_id: str, persona_id: UUID, variation_id: UUID, *,
                      cooldown: timedelta, clock: Clock) -> tuple[Persona, bool]:
    """Approve the variation; returns (persona, changed). changed is False for a repeated approval."""
    now = clock()
    result = approval_data.approve_variation(db, merchant_id=merchant_id, persona_id=persona_id,
                                             variation_id=variation_id, now=now)
    outcome = result["outcome"]
    if outcome == "persona_not_found":
        raise NotFound("Persona not found.", details={"persona_id": str(persona_id)})
    if outcome == "variation_not_found":
        raise NotFound("Variation not found for this persona.", details={"variation_id": str(variation_id)})
    if outcome == "job_not_completed":
        raise Conflict("Only variations of a completed job can be approved.",
                       details={"job_id": result.get("job_id"), "job_status": result.get("job_status")})
    if outcome == "videos_in_progress":
        raise Conflict("The persona's state videos are being generated from the approved image; wait for the job "
                       "to finish or cancel it first.", details={"active_job_id": result.get("active_job_id")})
    if outcome not in ("approved", "unchanged"):
        raise RuntimeError(f"unexpected approval outcome {outcome!r}")
    return _persona(result["persona"], cooldown, now), outcome == "approved"
