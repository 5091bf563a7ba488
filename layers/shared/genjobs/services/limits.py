"""Usage, rate-limit and cooldown reads (one round trip each) and idempotent cost recording."""

from __future__ import annotations

import math
from datetime import datetime, timedelta
from decimal import Decimal
from uuid import UUID

from genjobs.clock import Clock
from genjobs.data import usage as usage_data
from genjobs.db import Database
from genjobs.errors import NotFound
from genjobs.models.usage import CooldownCheck, RateLimitCheck, Usage, UsageRecorded

WINDOW = timedelta(hours=1)


def _seconds_until(moment: datetime, now: datetime) -> int:
    return max(1, math.ceil((moment - now).total_seconds()))


def get_usage(db: Database, merchant_id: str, *, default_hourly_limit: int, clock: Clock) -> Usage:
    now = clock()
    row = usage_data.read_usage(db, merchant_id, default_hourly_limit, now)
    used, limit = int(row["used"]), int(row["hourly_limit"])
    frees_from = row["frees_next_slot_from"] if used >= limit else row["oldest_in_window"]
    budget = row["monthly_budget_usd"]
    month = Decimal(row["cost_month"])
    return Usage(
        generations_last_hour=used,
        hourly_limit=limit,
        remaining=max(0, limit - used),
        window_resets_at=frees_from + WINDOW if frees_from is not None else None,
        cost_today_usd=float(row["cost_today"]),
        cost_this_month_usd=float(month),
        monthly_budget_usd=float(budget) if budget is not None else None,
        budget_remaining_usd=float(max(Decimal(0), Decimal(budget) - month)) if budget is not None else None,
    )


def check_rate_limit(db: Database, merchant_id: str, *, default_hourly_limit: int, clock: Clock) -> RateLimitCheck:
    now = clock()
    row = usage_data.read_window(db, merchant_id, default_hourly_limit, now)
    used, limit = int(row["used"]), int(row["hourly_limit"])
    if used < limit:
        return RateLimitCheck(allowed=True, used=used, limit=limit, remaining=limit - used)
    frees_from = row["frees_next_slot_from"]
    retry = _seconds_until(frees_from + WINDOW, now) if frees_from is not None else int(WINDOW.total_seconds())
    return RateLimitCheck(allowed=False, used=used, limit=limit, remaining=0, retry_after_seconds=retry)


def check_regeneration_cooldown(db: Database, merchant_id: str, persona_id: UUID, *, cooldown: timedelta,
                                clock: Clock) -> CooldownCheck:
    row = usage_data.read_cooldown(db, merchant_id, persona_id)
    if row is None:
        raise NotFound("Persona not found.", details={"persona_id": str(persona_id)})
    last = row["last_variations_completed_at"]
    now = clock()
    if last is None or last + cooldown <= now:
        return CooldownCheck(allowed=True)
    available = last + cooldown
    return CooldownCheck(allowed=False, available_at=available, retry_after_seconds=_seconds_until(available, now))


def record_usage(
    db: Database,
    merchant_id: str,
    *,
    usage_key: str,
    amount_usd: Decimal,
    job_id: UUID | None = None,
    quantity: Decimal = Decimal(1),
    unit_price_usd: Decimal | None = None,
    model_id: str | None = None,
    details: dict[str, object] | None = None,
    clock: Clock,
) -> UsageRecorded:
    """Record a cost once per usage_key (a retried call records nothing more)."""
    recorded = usage_data.insert_usage(
        db, merchant_id=merchant_id, usage_key=usage_key, job_id=job_id, amount_usd=amount_usd,
        quantity=quantity, unit_price_usd=unit_price_usd if unit_price_usd is not None else amount_usd,
        model_id=model_id, details=details or {}, now=clock(),
    )
    return UsageRecorded(recorded=recorded, usage_key=usage_key, amount_usd=float(amount_usd))
