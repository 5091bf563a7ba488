"""Usage, limits and cost reports."""

from __future__ import annotations

from datetime import datetime

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
