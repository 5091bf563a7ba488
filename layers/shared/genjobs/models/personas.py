"""Personas and the requests that create them or start their generations."""

from __future__ import annotations

import re
from datetime import datetime
from typing import Annotated, Any, Literal
from uuid import UUID

from pydantic import BaseModel, ConfigDict, Field, field_validator

from genjobs.models.text import STATE_NAME, Text, storable_text

PersonaStatus = Literal["draft", "generating", "pending_approval", "active"]
MAX_STATES = 10
# A Bedrock model id as the registry names it (e.g. luma.ray-v2:0); which ids exist is the database's answer.
ModelId = Annotated[str, Field(min_length=1, max_length=200, pattern=r"^[A-Za-z0-9][A-Za-z0-9._:-]*$",
                               description="An enabled model id of the right kind (GET /models); default: "
                                           "the kind's default model")]


class CreatePersonaRequest(BaseModel):
    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)

    name: Text = Field(min_length=1, max_length=200)
    description: Text | None = Field(default=None, max_length=4000)
    product_name: Text | None = Field(default=None, max_length=200)
    character_type: Text | None = Field(default=None, max_length=100)


class StartGenerationRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")

    variation_count: int = Field(default=3, ge=1, le=4)
    model: ModelId | None = None
    prompt_variables: dict[str, str] = Field(default_factory=dict, max_length=20)

    @field_validator("prompt_variables")
    @classmethod
    def _bounded_values(cls, value: dict[str, str]) -> dict[str, str]:
        for key, text in value.items():
            if not re.fullmatch(r"[a-z][a-z0-9_]{0,39}", key):
                raise ValueError(f"variable name {key!r} must be a lowercase identifier")
            if len(text) > 500:
                raise ValueError(f"variable {key!r} is longer than 500 characters")
            storable_text(text)
        return value


class StartStateVideosRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")

    states: list[str] | None = Field(default=None, min_length=1, max_length=MAX_STATES)
    model: ModelId | None = None

    @field_validator("states")
    @classmethod
    def _valid_states(cls, value: list[str] | None) -> list[str] | None:
        if value is None:
            return None
        for state in value:
            if not STATE_NAME.fullmatch(state):
                raise ValueError(f"state {state!r} must be a lowercase identifier (a-z, 0-9, _), at most 40 chars")
        duplicates = sorted({s for s in value if value.count(s) > 1})
        if duplicates:
            raise ValueError(f"duplicate states: {', '.join(duplicates)}")
        return value


class Persona(BaseModel):
    """A persona; `regeneration_available_at` is null when variations may be generated again now."""

    # Validated straight from its row; regeneration_available_at is computed by the database
    # (genjobs_regeneration_available_at_v1), the same rule a start checks.

    model_config = ConfigDict(extra="ignore")

    id: UUID
    name: str
    description: str | None = None
    product_name: str | None = None
    character_type: str | None = None
    status: PersonaStatus
    approved_variation_id: UUID | None = None
    image_url: str | None = None
    video_states: dict[str, str] = {}
    generation_metadata: dict[str, Any] = {}
    regeneration_available_at: datetime | None = None
    created_at: datetime
    updated_at: datetime
    version: int

    @field_validator("video_states", "generation_metadata", mode="before")
    @classmethod
    def _no_null(cls, value: Any) -> Any:
        return {} if value is None else value
