"""Direct (Lambda-to-Lambda) invocations: every action model, and the union each function takes.

Callers are trusted through IAM, so the merchant id may travel in the payload. Every text field goes
through `genjobs.models.text` (no NUL, no lone surrogate): a payload the database could not store is a
VALIDATION_ERROR, never an INTERNAL_ERROR.
"""

from __future__ import annotations

from decimal import Decimal
from typing import Annotated, Literal
from uuid import UUID

from pydantic import BaseModel, ConfigDict, Field, TypeAdapter

from genjobs.models.text import MerchantId, StateName, Text

StepName = Annotated[Text, Field(min_length=1, max_length=100)]


class Action(BaseModel):
    model_config = ConfigDict(extra="forbid")


# -- generation / worker --------------------------------------------------------------------------------


class RunJob(Action):
    """Run a queued job (the worker; sent by a start, the re-dispatch and the rescue sweeps)."""

    action: Literal["run_job"]
    job_id: UUID


# -- progress commands ----------------------------------------------------------------------------------


class _JobCommand(Action):
    job_id: UUID
    # Optional for trusted callers: when present, another merchant's job is not found.
    merchant_id: MerchantId | None = None
    # Optional fence: when present, a write for any other attempt is refused with STALE_ATTEMPT.
    # Bounded by the column (integer): a larger number reached PostgreSQL as numeric, matched no function
    # signature and answered INTERNAL_ERROR (found by the hostile corpus).
    attempt: int | None = Field(default=None, ge=1, le=2_147_483_647)


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
    error_message: Annotated[Text, Field(min_length=1, max_length=2000)]


class GetJobProgress(_JobCommand):
    action: Literal["get_job_progress"]


ProgressCommand = UpdateCurrentStep | UpdateProgress | AddGeneratedState | MarkCompleted | MarkFailed | GetJobProgress

# -- limits ---------------------------------------------------------------------------------------------


class CheckRateLimit(Action):
    action: Literal["check_rate_limit"]
    merchant_id: MerchantId


class CheckCooldown(Action):
    action: Literal["check_regeneration_cooldown"]
    merchant_id: MerchantId
    persona_id: UUID


class RecordUsage(Action):
    action: Literal["record_usage"]
    merchant_id: MerchantId
    usage_key: Annotated[Text, Field(min_length=1, max_length=300)]
    amount_usd: Decimal = Field(ge=0, max_digits=12, decimal_places=6)
    job_id: UUID | None = None
    quantity: Decimal = Field(default=Decimal(1), ge=0, max_digits=12, decimal_places=3)
    unit_price_usd: Decimal | None = Field(default=None, ge=0, max_digits=12, decimal_places=6)
    model_id: Annotated[Text, Field(max_length=200)] | None = None


LimitsAction = CheckRateLimit | CheckCooldown | RecordUsage

# -- approval -------------------------------------------------------------------------------------------


class ApproveVariation(Action):
    action: Literal["approve_variation"]
    merchant_id: MerchantId
    persona_id: UUID
    variation_id: UUID


# -- maintenance and migrations -------------------------------------------------------------------------


class Sweep(Action):
    """`sweep` runs every sweep; the others run one."""

    action: Literal["sweep", "rescue", "redispatch", "poll_videos", "retention", "webhooks"]


class CheckModelLifecycles(Action):
    """The daily lifecycle check of every enabled model (EventBridge sends this as the schedule's input)."""

    action: Literal["model_lifecycle"]


MaintenanceAction = Sweep | CheckModelLifecycles


class Migrate(Action):
    action: Literal["migrate"]


class PendingMigrations(Action):
    action: Literal["pending"]


MigrateAction = Migrate | PendingMigrations

# -- what each function takes ---------------------------------------------------------------------------


WORKER_ACTIONS: TypeAdapter[RunJob] = TypeAdapter(RunJob)
PROGRESS_ACTIONS: TypeAdapter[ProgressCommand] = TypeAdapter(Annotated[ProgressCommand, Field(discriminator="action")])
LIMITS_ACTIONS: TypeAdapter[LimitsAction] = TypeAdapter(Annotated[LimitsAction, Field(discriminator="action")])
APPROVAL_ACTIONS: TypeAdapter[ApproveVariation] = TypeAdapter(ApproveVariation)
MAINTENANCE_ACTIONS: TypeAdapter[MaintenanceAction] = TypeAdapter(
    Annotated[MaintenanceAction, Field(discriminator="action")])
MIGRATE_ACTIONS: TypeAdapter[MigrateAction] = TypeAdapter(Annotated[MigrateAction, Field(discriminator="action")])


# -- webhooks -------------------------------------------------------------------------------------------


class DeliverWebhooks(Action):
    """Deliver the due outbox messages (sent by a writer whose statement wrote events, and the sweep)."""

    action: Literal["deliver_webhooks"]


class AttemptResult(Action):
    message_id: UUID
    attempt: int = Field(ge=1)
    status_code: int | None = Field(default=None, ge=100, le=599)
    duration_ms: int = Field(ge=0)
    error: Text | None = Field(default=None, max_length=1000)
    response_body: Text | None = Field(default=None, max_length=1024)


class RecordWebhookAttempts(Action):
    """The webhook sender (outside the VPC) reports what became of the requests it posted."""

    action: Literal["record_webhook_attempts"]
    results: list[AttemptResult] = Field(min_length=1, max_length=100)


WebhooksAction = DeliverWebhooks | RecordWebhookAttempts
WEBHOOKS_ACTIONS: TypeAdapter[WebhooksAction] = TypeAdapter(Annotated[WebhooksAction, Field(discriminator="action")])
