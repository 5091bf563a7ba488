"""Webhook endpoints, their delivery attempts, and the requests that manage them (docs/webhooks.md)."""

from __future__ import annotations

from datetime import datetime
from typing import Any, Literal
from uuid import UUID

from pydantic import BaseModel, ConfigDict, Field

from genjobs.models.text import Text

EventType = Literal["job.queued", "job.started", "job.progress", "job.output", "job.completed", "job.failed",
                    "job.canceled"]
EVENT_TYPES: tuple[EventType, ...] = ("job.queued", "job.started", "job.progress", "job.output", "job.completed",
                                      "job.failed", "job.canceled")
MAX_ENDPOINTS_PER_MERCHANT = 20
MAX_DELIVERIES_PAGE = 100


class CreateWebhookRequest(BaseModel):
    model_config = ConfigDict(extra="forbid", json_schema_extra={"examples": [
        {"url": "https://hooks.example.com/genjobs", "events": ["job.completed", "job.failed"],
         "description": "order pipeline"}]})

    url: Text = Field(min_length=1, max_length=2048)
    events: list[EventType] | None = Field(default=None, min_length=1, max_length=len(EVENT_TYPES),
                                           description="event types to send; null or absent: all")
    description: Text | None = Field(default=None, max_length=500)


class UpdateWebhookRequest(BaseModel):
    model_config = ConfigDict(extra="forbid", json_schema_extra={"examples": [{"enabled": True},
                                                                           {"events": ["job.completed"]}]})

    url: Text | None = Field(default=None, min_length=1, max_length=2048)
    events: list[EventType] | None = Field(default=None, min_length=1, max_length=len(EVENT_TYPES))
    description: Text | None = Field(default=None, max_length=500)
    enabled: bool | None = Field(default=None, description="true re-enables a disabled endpoint")


class WebhookEndpoint(BaseModel):
    """An endpoint as the API shows it: never its secret (shown once, on create and rotate)."""

    model_config = ConfigDict(extra="ignore", populate_by_name=True)

    id: UUID
    url: str
    description: str | None = None
    events: list[str] | None = Field(default=None, validation_alias="event_types")
    enabled: bool
    disabled_reason: str | None = None
    disabled_at: datetime | None = None
    previous_secret_expires_at: datetime | None = None
    created_at: datetime
    updated_at: datetime


class WebhookEndpointWithSecret(WebhookEndpoint):
    secret: str = Field(description="whsec_<base64>: shown only now; verify signatures with it")


class WebhookEndpointList(BaseModel):
    items: list[WebhookEndpoint]


class RotatedSecret(BaseModel):
    id: UUID
    secret: str = Field(description="the new whsec_ secret, shown only now")
    previous_secret_expires_at: datetime = Field(description="until then the old secret signs too")


class PingQueued(BaseModel):
    message_id: UUID = Field(description="the webhook-id of the ping")
    event_type: Literal["ping"] = "ping"


class DeliveryAttempt(BaseModel):
    model_config = ConfigDict(extra="ignore")

    id: int
    message_id: UUID = Field(description="the webhook-id header: the same on every attempt of an event")
    event_type: str
    job_id: UUID | None = None
    job_version: int | None = None
    attempt: int
    status_code: int | None = None
    duration_ms: int | None = None
    error: str | None = None
    response_body: str | None = Field(default=None, description="at most 1 KB of the answer")
    attempted_at: datetime
    next_attempt_at: datetime | None = Field(default=None, description="null: delivered or given up")
    message_status: Literal["pending", "delivered", "failed"]


class DeliveryPage(BaseModel):
    items: list[DeliveryAttempt]
    next_cursor: str | None = None


class DueMessage(BaseModel):
    """A claimed message with what signing it needs (genjobs_claim_webhooks_v1)."""

    model_config = ConfigDict(extra="ignore", frozen=True)

    id: UUID
    endpoint_id: UUID
    merchant_id: str
    event_type: str
    job_id: UUID | None = None
    job_version: int | None = None
    data: dict[str, Any]
    occurred_at: datetime
    attempt: int
    url: str
    secret_encrypted: str
    previous_secret_encrypted: str | None = None


class DeliveryRun(BaseModel):
    """What one run of the delivery function did."""

    claimed: int = 0
    delivered: int = 0
    failed: int = 0
    enqueued: int = 0
