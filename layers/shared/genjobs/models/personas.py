"""Personas and the requests that create them or start their generations."""

from __future__ import annotations

import re
from datetime import datetime
from typing import Annotated, Any, Literal
from uuid import UUID

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from genjobs.models.text import STATE_NAME, Text, storable_text

PersonaStatus = Literal["draft", "generating", "pending_approval", "active"]
MAX_STATES = 10
# A Bedrock model id as the registry names it (e.g. luma.ray-v2:0); which ids exist is the database's answer.
ModelId = Annotated[str, Field(min_length=1, max_length=200, pattern=r"^[A-Za-z0-9][A-Za-z0-9._:-]*$",
                               description="An enabled model id of the right kind (GET /models); default: "
                                           "the kind's default model")]


VARIABLE_NAME = re.compile(r"[a-z][a-z0-9_]{0,39}")
MAX_VARIABLES = 20
MAX_VARIABLE_CHARS = 500


def bounded_variables(value: dict[str, str]) -> dict[str, str]:
    """Prompt variables as starts and template previews take them: lowercase names, bounded text."""
    for key, text in value.items():
        if not VARIABLE_NAME.fullmatch(key):
            raise ValueError(f"variable name {key!r} must be a lowercase identifier")
        if len(text) > MAX_VARIABLE_CHARS:
            raise ValueError(f"variable {key!r} is longer than {MAX_VARIABLE_CHARS} characters")
        storable_text(text)
    return value


class CreatePersonaRequest(BaseModel):
    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True, json_schema_extra={"examples": [
        {"name": "Chef Remy", "description": "A cheerful chef who loves sharp knives.",
         "product_name": "Remy Kitchen Knives", "character_type": "cartoon chef"}]})

    name: Text = Field(min_length=1, max_length=200)
    description: Text | None = Field(default=None, max_length=4000)
    product_name: Text | None = Field(default=None, max_length=200)
    character_type: Text | None = Field(default=None, max_length=100)


class UpdatePersonaRequest(BaseModel):
    """The fields to change (at least one); the same rules as a create. `name` cannot be cleared; the others
    are cleared with null."""

    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True, json_schema_extra={"examples": [
        {"name": "Chef Remy II", "description": None}]})

    name: Text | None = Field(default=None, min_length=1, max_length=200)
    description: Text | None = Field(default=None, max_length=4000)
    product_name: Text | None = Field(default=None, max_length=200)
    character_type: Text | None = Field(default=None, max_length=100)

    @model_validator(mode="after")
    def _something_to_change(self) -> UpdatePersonaRequest:
        if not self.model_fields_set:
            raise ValueError("give at least one of name, description, product_name, character_type")
        if "name" in self.model_fields_set and self.name is None:
            raise ValueError("name cannot be null")
        return self

    def changes(self) -> dict[str, str | None]:
        return {name: getattr(self, name) for name in sorted(self.model_fields_set)}


class StartGenerationRequest(BaseModel):
    model_config = ConfigDict(extra="forbid", json_schema_extra={"examples": [
        {"variation_count": 3, "prompt_variables": {"style": "watercolour"}}]})

    variation_count: int = Field(default=3, ge=1, le=4)
    model: ModelId | None = None
    prompt_variables: dict[str, str] = Field(default_factory=dict, max_length=MAX_VARIABLES)

    @field_validator("prompt_variables")
    @classmethod
    def _bounded_values(cls, value: dict[str, str]) -> dict[str, str]:
        return bounded_variables(value)


class StartStateVideosRequest(BaseModel):
    model_config = ConfigDict(extra="forbid", json_schema_extra={"examples": [
        {"states": ["idle", "talking", "thinking"]}]})

    states: list[str] | None = Field(default=None, min_length=1, max_length=MAX_STATES)
    model: ModelId | None = None
    # the active state_videos template may declare variables of its own (sql/004's declares none)
    prompt_variables: dict[str, str] = Field(default_factory=dict, max_length=MAX_VARIABLES)

    @field_validator("prompt_variables")
    @classmethod
    def _bounded_values(cls, value: dict[str, str]) -> dict[str, str]:
        return bounded_variables(value)

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


class PersonaPage(BaseModel):
    """One page of `GET /personas`: newest first; `next_cursor` is null on the last page."""

    items: list[Persona]
    next_cursor: str | None = None
