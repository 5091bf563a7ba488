"""Personas and the requests that create them or start their generations."""

from __future__ import annotations

import re
from collections.abc import Mapping
from datetime import datetime
from typing import Any, Literal
from uuid import UUID

from pydantic import BaseModel, ConfigDict, Field, field_validator

PersonaStatus = Literal["draft", "generating", "pending_approval", "active"]
STATE_NAME = re.compile(r"^[a-z][a-z0-9_]{0,39}$")
MAX_STATES = 10


def storable_text(value: str) -> str:
    """PostgreSQL text and jsonb cannot hold NUL characters, and JSON may carry lone surrogates that are not
    Unicode text at all: both are refused as invalid input (422), not left to fail in the database (500)."""
    if "\x00" in value:
        raise ValueError("must not contain NUL characters")
    try:
        value.encode("utf-8")
    except UnicodeEncodeError as exc:
        raise ValueError("must be valid Unicode text (no lone surrogates)") from exc
    return value


class CreatePersonaRequest(BaseModel):
    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)

    name: str = Field(min_length=1, max_length=200)
    description: str | None = Field(default=None, max_length=4000)
    product_name: str | None = Field(default=None, max_length=200)
    character_type: str | None = Field(default=None, max_length=100)

    @field_validator("name", "description", "product_name", "character_type")
    @classmethod
    def _storable(cls, value: str | None) -> str | None:
        return None if value is None else storable_text(value)


class StartGenerationRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")

    variation_count: int = Field(default=3, ge=1, le=4)
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

    @classmethod
    def from_row(cls, row: Mapping[str, Any], regeneration_available_at: datetime | None) -> Persona:
        return cls(
            id=row["id"],
            name=row["name"],
            description=row.get("description"),
            product_name=row.get("product_name"),
            character_type=row.get("character_type"),
            status=row["status"],
            approved_variation_id=row.get("approved_variation_id"),
            image_url=row.get("image_url"),
            video_states=dict(row.get("video_states") or {}),
            generation_metadata=dict(row.get("generation_metadata") or {}),
            regeneration_available_at=regeneration_available_at,
            created_at=row["created_at"],
            updated_at=row["updated_at"],
            version=row["version"],
        )
