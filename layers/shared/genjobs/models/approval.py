"""Character variations and their approval."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from typing import Annotated, Any, Literal
from uuid import UUID

from pydantic import BaseModel, ConfigDict, Field

from genjobs.models.jobs import JobStatus


class Variation(BaseModel):
    id: UUID
    job_id: UUID
    variation_index: int
    seed: int
    image_url: str
    approved: bool
    approved_at: datetime | None = None
    created_at: datetime

    @classmethod
    def from_row(cls, row: Mapping[str, Any]) -> Variation:
        return cls(
            id=row["variation_id"],
            job_id=row["job_id"],
            variation_index=row["variation_index"],
            seed=row["seed"],
            image_url=row["image_url"],
            approved=row["approved"],
            approved_at=row.get("approved_at"),
            created_at=row["created_at"],
        )


class VariationList(BaseModel):
    """`GET /personas/{persona_id}/variations`: the variations of one variations job of the persona (its
    latest unless `job_id` is given), with that job's status and the persona's approved variation."""

    persona_id: UUID
    approved_variation_id: UUID | None = None
    job_id: UUID | None = None
    job_status: JobStatus | None = None
    items: list[Variation] = []


class ApproveVariationRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")

    variation_id: UUID


class ApproveVariationAction(BaseModel):
    """Direct invoke for trusted callers: the merchant id travels in the payload."""

    model_config = ConfigDict(extra="forbid")

    action: Literal["approve_variation"]
    merchant_id: Annotated[str, Field(min_length=1, max_length=200)]
    persona_id: UUID
    variation_id: UUID


ApprovalAction = Annotated[ApproveVariationAction, Field(discriminator="action")]
