"""Limits function: GET /usage, and direct-invoke checks for trusted callers
(`check_rate_limit`, `check_regeneration_cooldown`, `record_usage`)."""

from __future__ import annotations

from datetime import timedelta
from decimal import Decimal
from typing import Annotated, Any, Literal
from uuid import UUID

from aws_lambda_powertools import Logger
from aws_lambda_powertools.logging import correlation_paths
from aws_lambda_powertools.utilities.typing import LambdaContext
from genjobs.clock import utc_now
from genjobs.config import get_config
from genjobs.db import get_database
from genjobs.http.app import create_resolver, merchant_id_from
from genjobs.http.openapi import error_responses, success_response
from genjobs.invocation import event_kind, handle_direct_invoke
from genjobs.models.usage import CooldownCheck, RateLimitCheck, Usage, UsageRecorded
from genjobs.services import limits
from pydantic import BaseModel, Field, TypeAdapter

logger = Logger(service="genjobs-limits")
app = create_resolver()

MerchantId = Annotated[str, Field(min_length=1, max_length=200)]


@app.get("/usage", responses={**success_response(200, "Usage, limits and costs", Usage), **error_responses()})
def get_usage() -> Usage:
    merchant_id = merchant_id_from(app, get_config().merchant_claim)
    return limits.get_usage(get_database(), merchant_id, default_hourly_limit=get_config().hourly_generation_limit,
                            clock=utc_now)


class CheckRateLimit(BaseModel):
    action: Literal["check_rate_limit"]
    merchant_id: MerchantId


class CheckCooldown(BaseModel):
    action: Literal["check_regeneration_cooldown"]
    merchant_id: MerchantId
    persona_id: UUID


class RecordUsage(BaseModel):
    action: Literal["record_usage"]
    merchant_id: MerchantId
    usage_key: str = Field(min_length=1, max_length=300)
    amount_usd: Decimal = Field(ge=0, max_digits=12, decimal_places=6)
    job_id: UUID | None = None
    quantity: Decimal = Field(default=Decimal(1), ge=0, max_digits=12, decimal_places=3)
    unit_price_usd: Decimal | None = Field(default=None, ge=0, max_digits=12, decimal_places=6)
    model_id: str | None = Field(default=None, max_length=200)


LimitsAction = Annotated[CheckRateLimit | CheckCooldown | RecordUsage, Field(discriminator="action")]
_ADAPTER: TypeAdapter[CheckRateLimit | CheckCooldown | RecordUsage] = TypeAdapter(LimitsAction)


def _dispatch(action: CheckRateLimit | CheckCooldown | RecordUsage) -> RateLimitCheck | CooldownCheck | UsageRecorded:
    db, config = get_database(), get_config()
    if isinstance(action, CheckRateLimit):
        return limits.check_rate_limit(db, action.merchant_id, default_hourly_limit=config.hourly_generation_limit,
                                       clock=utc_now)
    if isinstance(action, CheckCooldown):
        return limits.check_regeneration_cooldown(
            db, action.merchant_id, action.persona_id,
            cooldown=timedelta(hours=config.regeneration_cooldown_hours), clock=utc_now)
    return limits.record_usage(db, action.merchant_id, usage_key=action.usage_key, amount_usd=action.amount_usd,
                               job_id=action.job_id, quantity=action.quantity,
                               unit_price_usd=action.unit_price_usd, model_id=action.model_id, clock=utc_now)


@logger.inject_lambda_context(correlation_id_path=correlation_paths.API_GATEWAY_HTTP)
def lambda_handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    if event_kind(event) == "direct":
        return handle_direct_invoke(event, _ADAPTER, _dispatch)
    return app.resolve(event, context)
