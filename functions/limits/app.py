"""Limits function: GET /usage, and direct-invoke checks for trusted callers
(`check_rate_limit`, `check_regeneration_cooldown`, `record_usage`)."""

from __future__ import annotations

from genjobs import dependencies
from genjobs.entry import Function
from genjobs.http.openapi import error_responses, success_response
from genjobs.http.resolver import create_resolver, merchant_id_from
from genjobs.models.actions import LIMITS_ACTIONS, CheckCooldown, CheckRateLimit, LimitsAction
from genjobs.models.usage import CooldownCheck, RateLimitCheck, Usage, UsageRecorded
from genjobs.services import limits

app = create_resolver()


@app.get("/usage", responses={**success_response(200, "Usage, limits and costs", Usage), **error_responses()})
def get_usage() -> Usage:
    deps = dependencies.get()
    merchant_id = merchant_id_from(app, deps.settings.merchant_claim)
    return limits.get_usage(deps.db, merchant_id, default_hourly_limit=deps.settings.hourly_generation_limit,
                            clock=deps.clock)


def dispatch(action: LimitsAction) -> RateLimitCheck | CooldownCheck | UsageRecorded:
    deps = dependencies.get()
    if isinstance(action, CheckRateLimit):
        return limits.check_rate_limit(deps.db, action.merchant_id,
                                       default_hourly_limit=deps.settings.hourly_generation_limit, clock=deps.clock)
    if isinstance(action, CheckCooldown):
        return limits.check_regeneration_cooldown(deps.db, action.merchant_id, action.persona_id,
                                                  cooldown=deps.settings.regeneration_cooldown, clock=deps.clock)
    return limits.record_usage(deps.db, action.merchant_id, usage_key=action.usage_key, amount_usd=action.amount_usd,
                               job_id=action.job_id, quantity=action.quantity,
                               unit_price_usd=action.unit_price_usd, model_id=action.model_id, clock=deps.clock)


lambda_handler = Function("limits", http=app, actions=LIMITS_ACTIONS, dispatch=dispatch)
