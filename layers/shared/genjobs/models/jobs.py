"""Jobs as the API shows them."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from decimal import Decimal
from typing import Any, Literal
from uuid import UUID

from pydantic import BaseModel, Field

JobStatus = Literal["queued", "processing", "generating_videos", "completed", "failed", "canceled"]
JobType = Literal["character_variations", "state_videos"]
ACTIVE_STATUSES: tuple[JobStatus, ...] = ("queued", "processing", "generating_videos")
TERMINAL_STATUSES: tuple[JobStatus, ...] = ("completed", "failed", "canceled")


class JobError(BaseModel):
    code: str
    message: str | None = None


def _money(value: Any) -> float:
    return float(Decimal(str(value))) if value is not None else 0.0


class Job(BaseModel):
    id: UUID
    persona_id: UUID
    job_type: JobType
    status: JobStatus
    current_step: str | None = None
    progress: int = Field(ge=0, le=100)
    variation_count: int | None = None
    states_requested: list[str] = []
    states_generated: list[str] = []
    total_states: int = 0
    variation_urls: list[str] = []
    cost_usd: float = 0.0
    estimated_cost_usd: float = 0.0
    model_id: str | None = None
    error: JobError | None = None
    retry_count: int = 0
    max_retries: int = 0
    attempt: int = 0
    created_at: datetime
    started_at: datetime | None = None
    completed_at: datetime | None = None
    updated_at: datetime
    version: int

    @classmethod
    def from_row(cls, row: Mapping[str, Any]) -> Job:
        error = None
        if row.get("error_code"):
            error = JobError(code=row["error_code"], message=row.get("error_message"))
        states_requested = list(row.get("states_requested") or [])
        return cls(
            id=row["id"],
            persona_id=row["persona_id"],
            job_type=row["job_type"],
            status=row["status"],
            current_step=row.get("current_step"),
            progress=row["progress"],
            variation_count=row.get("variation_count"),
            states_requested=states_requested,
            states_generated=list(row.get("states_generated") or []),
            total_states=len(states_requested),
            variation_urls=list(row.get("variation_urls") or []),
            cost_usd=_money(row.get("cost_usd")),
            estimated_cost_usd=_money(row.get("estimated_cost_usd")),
            model_id=row.get("model_id"),
            error=error,
            retry_count=row.get("retry_count", 0),
            max_retries=row.get("max_retries", 0),
            attempt=row.get("attempt", 0),
            created_at=row["created_at"],
            started_at=row.get("started_at"),
            completed_at=row.get("completed_at"),
            updated_at=row["updated_at"],
            version=row["version"],
        )
