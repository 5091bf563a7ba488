"""Usage, rate-limit and cooldown reads, the daily history and the ledger (one round trip each), and
idempotent cost recording."""

from __future__ import annotations

import math
from datetime import datetime, timedelta
from decimal import Decimal
from uuid import UUID

from genjobs.data import usage as usage_data
from genjobs.db import Database
from genjobs.errors import BadRequest, NotFound, ValidationFailed
from genjobs.models.jobs import DEFAULT_PAGE_SIZE, MAX_PAGE_SIZE
from genjobs.models.usage import (
    DEFAULT_USAGE_DAYS,
    MAX_USAGE_DAYS,
    CooldownCheck,
    DailyUsage,
    DailyUsageReport,
    LedgerEntry,
    LedgerPage,
    RateLimitCheck,
    Usage,
    UsageRecorded,
)
from genjobs.ports import Clock, CursorKeys
from genjobs.services import cursors


def _seconds_until(moment: datetime, now: datetime) -> int:
    return max(1, math.ceil((moment - now).total_seconds()))


def get_usage(db: Database, merchant_id: str, *, default_hourly_limit: int, clock: Clock) -> Usage:
    row = usage_data.read_usage(db, merchant_id, default_hourly_limit, clock())
    budget = row.monthly_budget_usd
    return Usage(
        generations_last_hour=row.used,
        hourly_limit=row.hourly_limit,
        remaining=max(0, row.hourly_limit - row.used),
        window_resets_at=row.frees_at,
        cost_today_usd=float(row.cost_today),
        cost_this_month_usd=float(row.cost_month),
        monthly_budget_usd=float(budget) if budget is not None else None,
        budget_remaining_usd=float(max(Decimal(0), budget - row.cost_month)) if budget is not None else None,
    )


def check_rate_limit(db: Database, merchant_id: str, *, default_hourly_limit: int, clock: Clock) -> RateLimitCheck:
    now = clock()
    window = usage_data.read_window(db, merchant_id, default_hourly_limit, now)
    used, limit = window.used, window.hourly_limit
    if used < limit:
        return RateLimitCheck(allowed=True, used=used, limit=limit, remaining=limit - used)
    retry = _seconds_until(window.frees_at, now) if window.frees_at is not None else 3600
    return RateLimitCheck(allowed=False, used=used, limit=limit, remaining=0, retry_after_seconds=retry)


def check_regeneration_cooldown(db: Database, merchant_id: str, persona_id: UUID, *, cooldown: timedelta,
                                clock: Clock) -> CooldownCheck:
    now = clock()
    row = usage_data.read_cooldown(db, merchant_id, persona_id, cooldown=cooldown, now=now)
    if row is None:
        raise NotFound("Persona not found.", details={"persona_id": str(persona_id)})
    if row.available_at is None:
        return CooldownCheck(allowed=True)
    return CooldownCheck(allowed=False, available_at=row.available_at,
                         retry_after_seconds=_seconds_until(row.available_at, now))


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


# -- history --------------------------------------------------------------------------------------------


def daily_usage(db: Database, merchant_id: str, *, days: int = DEFAULT_USAGE_DAYS, clock: Clock) -> DailyUsageReport:
    if not 1 <= days <= MAX_USAGE_DAYS:
        raise ValidationFailed(f"days must be between 1 and {MAX_USAGE_DAYS}.")
    rows = usage_data.read_daily(db, merchant_id, days=days, now=clock())
    return DailyUsageReport(days=days, items=[DailyUsage(day=r.day, created=r.created, completed=r.completed,
                                                         failed=r.failed, canceled=r.canceled,
                                                         cost_usd=float(r.cost_usd)) for r in rows])


def ledger(db: Database, merchant_id: str, *, limit: int = DEFAULT_PAGE_SIZE, cursor: str | None = None,
           cursor_keys: CursorKeys) -> LedgerPage:
    """The merchant's cost entries, newest first, keyset paged (entries recorded while a client pages never
    shift a page)."""
    if not 1 <= limit <= MAX_PAGE_SIZE:
        raise ValidationFailed(f"limit must be between 1 and {MAX_PAGE_SIZE}.")
    scope = {"list": "ledger"}
    after = None
    if cursor is not None:
        created_at, key = cursors.decode_cursor(cursor_keys, merchant_id, cursor, scope)
        if not key.isdigit() or len(key) > 19:
            raise BadRequest("The cursor is not valid; start again without it.", details={"parameter": "cursor"})
        after = (created_at, int(key))
    rows = usage_data.read_ledger(db, merchant_id, after=after, limit=limit + 1)
    page = [LedgerEntry.model_validate(r.model_dump()) for r in rows[:limit]]
    next_cursor = (cursors.encode_cursor(cursor_keys, merchant_id, page[-1].created_at, str(page[-1].id), scope)
                   if len(rows) > limit else None)
    return LedgerPage(items=page, next_cursor=next_cursor)
