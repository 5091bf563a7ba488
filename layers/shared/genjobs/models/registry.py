"""The model registry as the API shows it (GET /models) and as the daily lifecycle check reports it."""

from __future__ import annotations

from datetime import datetime
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

ModelKind = Literal["image", "video"]
Lifecycle = Literal["active", "legacy", "eol"]


class ModelInfo(BaseModel):
    """A model a merchant can choose: `unit_price_usd` per `unit` (`image`, or `video_second` at
    `price_resolution`); `lifecycle` null until the daily check has read it from Bedrock."""

    model_config = ConfigDict(extra="ignore")

    id: str
    kind: ModelKind
    family: str
    provider: str
    name: str
    region: str
    unit_price_usd: float  # a number in JSON, as the jobs' costs are
    unit: Literal["image", "video_second"]
    price_resolution: str | None = None
    price_source: str | None = None
    default: bool
    lifecycle: Lifecycle | None = None
    lifecycle_checked_at: datetime | None = None
    eol_at: datetime | None = None


class ModelList(BaseModel):
    items: list[ModelInfo] = Field(description="Enabled models that are not eol, defaults first")


class LifecycleChange(BaseModel):
    model_id: str
    before: Lifecycle | None
    after: Lifecycle
    eol_at: datetime | None = None


class LifecycleReport(BaseModel):
    """What one run of the lifecycle check found: every enabled model asked, the legacy/eol ones, the changes,
    and the models Bedrock could not be asked about (they keep their recorded lifecycle)."""

    checked: int = 0
    legacy: list[str] = []
    eol: list[str] = []
    changes: list[LifecycleChange] = []
    errors: list[str] = []
