"""Job reads, job lists, the timeline and the progress commands (direct invoke) as the API shows them."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from decimal import Decimal
from typing import Annotated, Any, Literal
from uuid import UUID

from pydantic import BaseModel, ConfigDict, Field

from genjobs.models.jobs import Job, JobStatus, JobType
from genjobs.models.personas import STATE_NAME

MAX_PAGE_SIZE = 100
DEFAULT_PAGE_SIZE = 20
MAX_WAIT_SECONDS = 20


class JobPage(BaseModel):
    """One page of `GET /jobs`: newest first; `next_cursor` is null on the last page."""

    items: list[Job]
    next_cursor: str | None = None


class JobEvent(BaseModel):
    id: int
    event_type: str
    status: str | None = None
    current_step: str | None = None
    progress: int | None = None
    attempt: int | None = None
    details: dict[str, Any] = {}
    created_at: datetime

    @classmethod
    def from_row(cls, row: Mapping[str, Any]) -> JobEvent:
        return cls(
            id=row["event_id"],
            event_type=row["event_type"],
            status=row.get("status"),
            current_step=row.get("current_step"),
            progress=row.get("progress"),
            attempt=row.get("attempt"),
            details=dict(row.get("details") or {}),
            created_at=row["created_at"],
        )


class JobTimeline(BaseModel):
    """`GET /jobs/{job_id}/events`: the job's timeline, oldest first; `next_after` pages on."""

    job_id: UUID
    items: list[JobEvent]
    next_after: int | None = None


class JobProgress(BaseModel):
    """What the progress commands answer: the job's progress after the command."""

    job_id: UUID
    merchant_id: str
    persona_id: UUID
    job_type: JobType
    status: JobStatus
    current_step: str | None = None
    progress: int
    states_requested: list[str] = []
    states_generated: list[str] = []
    attempt: int
    version: int
    updated_at: datetime
    changed: bool | None = None

    @classmethod
    def from_row(cls, row: Mapping[str, Any], changed: bool | None = None) -> JobProgress:
        return cls(
            job_id=row["id"],
            merchant_id=row["merchant_id"],
            persona_id=row["persona_id"],
            job_type=row["job_type"],
            status=row["status"],
            current_step=row.get("current_step"),
            progress=row["progress"],
            states_requested=list(row.get("states_requested") or []),
            states_generated=list(row.get("states_generated") or []),
            attempt=row["attempt"],
            version=row["version"],
            updated_at=row["updated_at"],
            changed=changed,
        )


# -- progress commands (direct invoke; callers are trusted through IAM) -------------------------------------

MerchantId = Annotated[str, Field(min_length=1, max_length=200)]
StateName = Annotated[str, Field(pattern=STATE_NAME.pattern)]
StepName = Annotated[str, Field(min_length=1, max_length=100)]


class _JobCommand(BaseModel):
    model_config = ConfigDict(extra="forbid")

    job_id: UUID
    # Optional for trusted callers: when present, another merchant's job is not found.
    merchant_id: MerchantId | None = None
    # Optional fence: when present, a write for any other attempt is refused with STALE_ATTEMPT.
    attempt: int | None = Field(default=None, ge=1)


class UpdateCurrentStep(_JobCommand):
    action: Literal["update_current_step"]
    step: StepName


class UpdateProgress(_JobCommand):
    action: Literal["update_progress"]
    progress: int = Field(ge=0, le=100)
    step: StepName | None = None


class AddGeneratedState(_JobCommand):
    action: Literal["add_generated_state"]
    state: StateName
    video_url: str | None = Field(default=None, min_length=1, max_length=2000, pattern=r"^https?://\S+$")


class MarkCompleted(_JobCommand):
    action: Literal["mark_completed"]
    # Omitted: the cost is computed from the job's outputs and the model's price.
    cost_usd: Decimal | None = Field(default=None, ge=0, max_digits=12, decimal_places=6)


class MarkFailed(_JobCommand):
    action: Literal["mark_failed"]
    error_code: str = Field(min_length=1, max_length=100, pattern=r"^[A-Z][A-Z0-9_]*$")
    error_message: str = Field(min_length=1, max_length=2000)


class GetJobProgress(_JobCommand):
    action: Literal["get_job_progress"]


ProgressCommand = UpdateCurrentStep | UpdateProgress | AddGeneratedState | MarkCompleted | MarkFailed | GetJobProgress
ProgressAction = Annotated[ProgressCommand, Field(discriminator="action")]
