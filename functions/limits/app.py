"""Limits function: GET /usage, its daily history and the ledger, and direct-invoke checks for trusted callers
(`check_rate_limit`, `check_regeneration_cooldown`, `record_usage`)."""

from __future__ import annotations

from typing import Annotated

from aws_lambda_powertools.event_handler.openapi.params import Query
from genjobs import dependencies
from genjobs.entry import Function
from genjobs.http.openapi import error_responses, success_response
from genjobs.http.resolver import create_resolver, merchant_id_from
from genjobs.models.actions import LIMITS_ACTIONS, CheckCooldown, CheckRateLimit, LimitsAction
from genjobs.models.jobs import DEFAULT_PAGE_SIZE, MAX_PAGE_SIZE
from genjobs.models.usage import (
    DEFAULT_USAGE_DAYS,
    MAX_USAGE_DAYS,
    CooldownCheck,
    DailyUsageReport,
    LedgerPage,
    RateLimitCheck,
    Usage,
    UsageRecorded,
)
from genjobs.services import limits

app = create_resolver()


@app.get("/usage",
         summary="Usage and limits",
         description="Generations in the sliding hour, the hourly limit, what remains and when a slot frees; cost "
                     "today and this month (partial charges of failed or canceled jobs included); the budget.",
         responses={**success_response(200, "Usage, limits and costs", Usage), **error_responses()})
def get_usage() -> Usage:
    deps = dependencies.get()
    merchant_id = merchant_id_from(app, deps.settings.merchant_claim)
    return limits.get_usage(deps.db, merchant_id, default_hourly_limit=deps.settings.hourly_generation_limit,
                            clock=deps.clock)


@app.get("/usage/daily",
         summary="Daily usage history",
         description="Per UTC day, oldest first, for the last `days` days (1-90, default 30): jobs created that day "
                     "and how many of them completed, failed or were canceled, and the cost recorded that day.",
         responses={**success_response(200, "One entry per day", DailyUsageReport), **error_responses()})
def get_daily_usage(
    days: Annotated[int, Query(ge=1, le=MAX_USAGE_DAYS, description="how many days back")] = DEFAULT_USAGE_DAYS,
) -> DailyUsageReport:
    deps = dependencies.get()
    return limits.daily_usage(deps.db, merchant_id_from(app, deps.settings.merchant_claim), days=days,
                              clock=deps.clock)


@app.get("/usage/ledger",
         summary="Cost ledger",
         description="The merchant's cost entries, newest first: one per job (`job:<id>`; `details.partial` for "
                     "a failed or canceled job charged for what it produced) and recorded usages. Keyset paged.",
         responses={**success_response(200, "A page of ledger entries", LedgerPage), **error_responses(400)})
def get_ledger(
    limit: Annotated[int, Query(ge=1, le=MAX_PAGE_SIZE)] = DEFAULT_PAGE_SIZE,
    cursor: Annotated[str | None, Query(description="next_cursor of the previous page")] = None,
) -> LedgerPage:
    deps = dependencies.get()
    return limits.ledger(deps.db, merchant_id_from(app, deps.settings.merchant_claim), limit=limit, cursor=cursor,
                         cursor_keys=deps.cursor_keys())


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
