"""Usage, limits and cost reports."""

from __future__ import annotations

from datetime import date, datetime
from typing import Any
from uuid import UUID

from pydantic import BaseModel


class Usage(BaseModel):
    generations_last_hour: int
    hourly_limit: int
    remaining: int
    window_resets_at: datetime | None
    cost_today_usd: float
    cost_this_month_usd: float
    monthly_budget_usd: float | None
    budget_remaining_usd: float | None


class RateLimitCheck(BaseModel):
    allowed: bool
    used: int
    limit: int
    remaining: int
    retry_after_seconds: int | None = None


class CooldownCheck(BaseModel):
    allowed: bool
    available_at: datetime | None = None
    retry_after_seconds: int | None = None


class UsageRecorded(BaseModel):
    recorded: bool
    usage_key: str
    amount_usd: float


MAX_USAGE_DAYS = 90
DEFAULT_USAGE_DAYS = 30


class DailyUsage(BaseModel):
    """One UTC day: jobs created that day by how they ended (so far), and the cost recorded that day."""

    day: date
    created: int
    completed: int
    failed: int
    canceled: int
    cost_usd: float


class DailyUsageReport(BaseModel):
    """`GET /usage/daily`: the last `days` days, oldest first, every day present (zeros included)."""

    days: int
    items: list[DailyUsage]


class LedgerEntry(BaseModel):
    """A cost in the ledger: `job:<id>` for a job's outputs (completed, or partial for a failed or canceled
    job: `details.partial`), or a caller's key for a recorded usage."""

    id: int
    job_id: UUID | None = None
    usage_key: str
    billing_period: date
    model_id: str | None = None
    quantity: float
    unit_price_usd: float
    amount_usd: float
    details: dict[str, Any] = {}
    created_at: datetime


class LedgerPage(BaseModel):
    """One page of `GET /usage/ledger`: newest first; `next_cursor` is null on the last page."""

    items: list[LedgerEntry]
    next_cursor: str | None = None
