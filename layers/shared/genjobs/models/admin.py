"""What the operator routes (/admin/...) take and answer: prompt templates, merchant settings, the audit."""

from __future__ import annotations

from datetime import datetime
from typing import Any
from uuid import UUID

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from genjobs.models.jobs import JobType
from genjobs.models.personas import MAX_VARIABLE_CHARS, MAX_VARIABLES, VARIABLE_NAME, bounded_variables
from genjobs.models.text import Text, storable_text


class PromptTemplate(BaseModel):
    """One version of a prompt template; `variables` maps each declared variable to its default (null: the
    caller must give it)."""

    model_config = ConfigDict(extra="ignore")

    id: UUID
    job_type: JobType
    name: str
    version: int
    template: str
    variables: dict[str, str | None] = {}
    is_active: bool
    created_at: datetime


class PromptTemplateList(BaseModel):
    """Every version, the active one of each job type first."""

    items: list[PromptTemplate]


class CreatePromptTemplateRequest(BaseModel):
    model_config = ConfigDict(extra="forbid", json_schema_extra={"examples": [{
        "job_type": "character_variations", "name": "default",
        "template": "Character sheet of ${name}, mascot of ${product_name}, in ${style} style, ${mood}.",
        "variables": {"style": "friendly 3D cartoon", "mood": None}}]})

    job_type: JobType
    name: Text = Field(min_length=1, max_length=100)
    template: Text = Field(min_length=1, max_length=4000)
    variables: dict[str, str | None] = Field(default_factory=dict, max_length=MAX_VARIABLES)

    @field_validator("variables")
    @classmethod
    def _valid_variables(cls, value: dict[str, str | None]) -> dict[str, str | None]:
        for key, default in value.items():
            if not VARIABLE_NAME.fullmatch(key):
                raise ValueError(f"variable name {key!r} must be a lowercase identifier")
            if default is not None:
                if len(default) > MAX_VARIABLE_CHARS:
                    raise ValueError(f"the default of {key!r} is longer than {MAX_VARIABLE_CHARS} characters")
                storable_text(default)
        return value


class PreviewRequest(BaseModel):
    model_config = ConfigDict(extra="forbid", json_schema_extra={"examples": [{
        "template_id": "6f1c2a8e-3b7d-4c59-9a1e-2d4b5c6e7f80",
        "variables": {"mood": "cheerful", "name": "Chef Remy"}}]})

    template_id: UUID
    # declared variables, and built-ins (name, description, product_name, character_type, state) standing in
    # for a persona's fields
    variables: dict[str, str] = Field(default_factory=dict, max_length=MAX_VARIABLES + 5)

    @field_validator("variables")
    @classmethod
    def _bounded(cls, value: dict[str, str]) -> dict[str, str]:
        return bounded_variables(value)


class Preview(BaseModel):
    template_id: UUID
    prompt: str


class MerchantOverview(BaseModel):
    """A merchant's settings (null: the deployment default / no budget), the limit in effect and its usage."""

    merchant_id: str
    hourly_generation_limit: int | None
    effective_hourly_limit: int
    monthly_budget_usd: float | None
    generations_last_hour: int
    cost_this_month_usd: float
    reserved_usd: float
    total_cost_usd: float
    persona_count: int
    job_count: int
    completed_jobs: int
    failed_jobs: int
    active_jobs: int
    created_at: datetime
    updated_at: datetime


class MerchantSettingsPatch(BaseModel):
    """The settings to change; a field given as null goes back to the default (limit) or no budget."""

    model_config = ConfigDict(extra="forbid", json_schema_extra={"examples": [
        {"hourly_generation_limit": 50, "monthly_budget_usd": 200.0}, {"monthly_budget_usd": None}]})

    hourly_generation_limit: int | None = Field(default=None, ge=0, le=1_000_000)
    monthly_budget_usd: float | None = Field(default=None, ge=0, le=100_000_000)

    @model_validator(mode="after")
    def _something_to_change(self) -> MerchantSettingsPatch:
        if not self.model_fields_set:
            raise ValueError("give hourly_generation_limit and/or monthly_budget_usd")
        return self


class AuditEntry(BaseModel):
    id: int
    actor: str
    action: str
    target_type: str
    target_id: str
    before: dict[str, Any] | None = None
    after: dict[str, Any] | None = None
    created_at: datetime


class AuditPage(BaseModel):
    """One page of `GET /admin/audit`: newest first; `next_cursor` is null on the last page."""

    items: list[AuditEntry]
    next_cursor: str | None = None
