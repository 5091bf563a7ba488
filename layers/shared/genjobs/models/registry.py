"""The model registry as the API shows it (GET /models) and as the daily lifecycle check reports it."""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal
from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

from genjobs.models.text import Text

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


class AdminModel(ModelInfo):
    """A model as an operator sees it: every row of the registry, enabled or not."""

    enabled: bool


class AdminModelList(BaseModel):
    items: list[AdminModel] = Field(description="Every configured model: images then videos, defaults first")


class ModelPatch(BaseModel):
    """What an operator changes on a model; a price is effective for jobs started afterwards (a job keeps the
    price it started with)."""

    model_config = ConfigDict(extra="forbid", json_schema_extra={"examples": [
        {"enabled": True}, {"default": True}, {"unit_price_usd": 0.05, "price_source": "AWS pricing page, 2026-12"}]})

    enabled: bool | None = None
    default: Literal[True] | None = Field(default=None, description="true makes it its kind's one default")
    unit_price_usd: Decimal | None = Field(default=None, ge=0, max_digits=12, decimal_places=6)
    price_source: Annotated[Text, Field(min_length=1, max_length=500)] | None = None

    @model_validator(mode="after")
    def _something_to_change(self) -> ModelPatch:
        if not ({"enabled", "default", "unit_price_usd"} & self.model_fields_set):
            raise ValueError("give enabled, default and/or unit_price_usd")
        if self.price_source is not None and self.unit_price_usd is None:
            raise ValueError("price_source goes with unit_price_usd")
        return self
