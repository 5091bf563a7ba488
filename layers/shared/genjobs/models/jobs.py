"""Jobs as the API shows them: one job, a page of jobs, the timeline, a job's progress."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from decimal import Decimal
from typing import Any, Literal
from uuid import UUID

from pydantic import BaseModel, ConfigDict, Field, field_validator

JobStatus = Literal["queued", "processing", "generating_videos", "completed", "failed", "canceled"]
JobType = Literal["character_variations", "state_videos"]
RUNNING_STATUSES: tuple[JobStatus, ...] = ("processing", "generating_videos")
TERMINAL_STATUSES: tuple[JobStatus, ...] = ("completed", "failed", "canceled")
ALL_STATUSES: tuple[JobStatus, ...] = ("queued", "processing", "generating_videos", *TERMINAL_STATUSES)

MAX_PAGE_SIZE = 100
DEFAULT_PAGE_SIZE = 20
MAX_WAIT_SECONDS = 20
MAX_TIMELINE_PAGE = 500


class JobError(BaseModel):
    code: str
    message: str | None = None


class MediaOutput(BaseModel):
    """One generated file of a job: an image of a variations job or a state's video."""

    model_config = ConfigDict(extra="ignore")

    id: UUID
    kind: Literal["image", "video"]
    state: str | None = None
    url: str
    content_type: str
    width: int | None = None
    height: int | None = None
    duration_seconds: float | None = None
    size_bytes: int | None = None
    created_at: datetime


class Job(BaseModel):
    """A generation job: its status, step, progress, outputs, cost and error. A failed or canceled job's
    `cost_usd` is what the outputs it had already produced cost (charged once)."""

    # No validators: a read selects exactly these columns (genjobs.data.jobs); a row of the table goes
    # through job_from_row.

    model_config = ConfigDict(extra="ignore")

    id: UUID
    merchant_id: str | None = None
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
    outputs: list[MediaOutput] = []
    retry_of: UUID | None = None
    error: JobError | None = None
    retry_count: int = 0
    max_retries: int = 0
    attempt: int = 0
    created_at: datetime
    started_at: datetime | None = None
    completed_at: datetime | None = None
    updated_at: datetime
    version: int


def job_from_row(row: Mapping[str, Any]) -> Job:
    """A Job from a generation_jobs row as a mapping (a writer function's `job`, to_jsonb of the row):
    `error_code`/`error_message` become `error`, `total_states` is counted, NULL arrays are empty, money is a
    float. The reads select these API columns in SQL instead (genjobs.data.jobs), so a page of jobs validates
    in pydantic-core without a Python call per row (issue 18)."""
    data = dict(row)
    code, message = data.pop("error_code", None), data.pop("error_message", None)
    if "error" not in data:
        data["error"] = {"code": code, "message": message} if code else None
    for name in ("states_requested", "states_generated", "variation_urls", "outputs"):
        if data.get(name) is None:
            data[name] = []
    data.setdefault("total_states", len(data["states_requested"]))
    for money in ("cost_usd", "estimated_cost_usd"):
        if isinstance(data.get(money), Decimal):
            data[money] = float(data[money])
    return Job.model_validate(data)


class JobPage(BaseModel):
    """One page of `GET /jobs`: newest first; `next_cursor` is null on the last page."""

    items: list[Job]
    next_cursor: str | None = None


class JobEvent(BaseModel):
    model_config = ConfigDict(populate_by_name=True, extra="ignore")

    id: int = Field(validation_alias="event_id")
    event_type: str
    status: str | None = None
    current_step: str | None = None
    progress: int | None = None
    attempt: int | None = None
    details: dict[str, Any] = {}
    created_at: datetime

    @field_validator("details", mode="before")
    @classmethod
    def _no_null(cls, value: Any) -> Any:
        return {} if value is None else value


class JobTimeline(BaseModel):
    """`GET /jobs/{job_id}/events`: the job's timeline, oldest first; `next_after` pages on."""

    job_id: UUID
    items: list[JobEvent]
    next_after: int | None = None


class JobProgress(BaseModel):
    """What the progress commands answer: the job's progress after the command."""

    model_config = ConfigDict(extra="ignore", populate_by_name=True)

    job_id: UUID = Field(validation_alias="id")
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
