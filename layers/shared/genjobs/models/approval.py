"""Character variations and their approval."""

from __future__ import annotations

from datetime import datetime
from uuid import UUID

from pydantic import BaseModel, ConfigDict, Field

from genjobs.models.jobs import JobStatus


class Variation(BaseModel):
    model_config = ConfigDict(populate_by_name=True, extra="ignore")

    id: UUID = Field(validation_alias="variation_id")
    job_id: UUID
    variation_index: int
    seed: int
    image_url: str
    approved: bool
    approved_at: datetime | None = None
    created_at: datetime


class VariationList(BaseModel):
    """`GET /personas/{persona_id}/variations`: the variations of one variations job of the persona (its
    latest unless `job_id` is given), with that job's status and the persona's approved variation."""

    persona_id: UUID
    approved_variation_id: UUID | None = None
    job_id: UUID | None = None
    job_status: JobStatus | None = None
    items: list[Variation] = []


class ApproveVariationRequest(BaseModel):
    model_config = ConfigDict(extra="forbid", json_schema_extra={"examples": [
        {"variation_id": "3c9d2f1e-5b6a-4d7c-8e9f-0a1b2c3d4e5f"}]})

    variation_id: UUID
