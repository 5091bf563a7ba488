"""SQL for usage, limits and the cost ledger. The sliding hour, the cooldown and the billing month are the
database's functions (sql/013), the same ones a start checks."""

from __future__ import annotations

from datetime import date, datetime, timedelta
from decimal import Decimal
from typing import Any
from uuid import UUID

from psycopg.types.json import Jsonb
from pydantic import BaseModel

from genjobs.db import Database


class UsageRow(BaseModel):
    hourly_limit: int
    used: int
    frees_at: datetime | None
    monthly_budget_usd: Decimal | None
    cost_today: Decimal
    cost_month: Decimal


class WindowRow(BaseModel):
    hourly_limit: int
    used: int
    frees_at: datetime | None


class CooldownRow(BaseModel):
    available_at: datetime | None


def read_usage(db: Database, merchant_id: str, default_hourly_limit: int, now: datetime) -> UsageRow:
    """The window, costs and budget in one statement (provisions the merchant on first use)."""
    row = db.fetch_one(
        """
        WITH provisioned AS (
            INSERT INTO merchants (id) VALUES (%(merchant_id)s) ON CONFLICT (id) DO NOTHING
        )
        SELECT w.hourly_limit, w.used, w.frees_at,
               (SELECT monthly_budget_usd FROM merchants WHERE id = %(merchant_id)s) AS monthly_budget_usd,
               (SELECT coalesce(sum(amount_usd), 0) FROM usage_ledger
                 WHERE merchant_id = %(merchant_id)s
                   AND created_at >= date_trunc('day', %(now)s AT TIME ZONE 'UTC') AT TIME ZONE 'UTC') AS cost_today,
               (SELECT coalesce(sum(amount_usd), 0) FROM usage_ledger
                 WHERE merchant_id = %(merchant_id)s
                   AND billing_period = genjobs_billing_period_v1(%(now)s)) AS cost_month
          FROM genjobs_rate_window_v1(%(merchant_id)s, %(default_limit)s, %(now)s) AS w
        """,
        {"merchant_id": merchant_id, "default_limit": default_hourly_limit, "now": now},
        row=UsageRow,
    )
    assert row is not None
    return row


def read_window(db: Database, merchant_id: str, default_hourly_limit: int, now: datetime) -> WindowRow:
    """The sliding hour alone (the rate-limit check): no cost sums, no provisioning."""
    row = db.fetch_one("SELECT hourly_limit, used, frees_at FROM genjobs_rate_window_v1(%s, %s, %s)",
                       (merchant_id, default_hourly_limit, now), row=WindowRow)
    assert row is not None
    return row


def read_cooldown(db: Database, merchant_id: str, persona_id: UUID, *, cooldown: timedelta,
                  now: datetime) -> CooldownRow | None:
    """When the persona may generate variations again (null: now); None when it is not this merchant's."""
    return db.fetch_one(
        "SELECT genjobs_regeneration_available_at_v1(last_variations_completed_at, %s, %s) AS available_at "
        "FROM personas WHERE id = %s AND merchant_id = %s AND deleted_at IS NULL",
        (cooldown, now, persona_id, merchant_id), row=CooldownRow,
    )


def insert_usage(
    db: Database,
    *,
    merchant_id: str,
    usage_key: str,
    job_id: UUID | None,
    amount_usd: Decimal,
    quantity: Decimal,
    unit_price_usd: Decimal,
    model_id: str | None,
    details: dict[str, object],
    now: datetime,
) -> bool:
    """Record a ledger entry once per (merchant, usage_key); False when it was already recorded."""
    inserted = db.fetch_value(
        """
        WITH provisioned AS (
            INSERT INTO merchants (id) VALUES (%(merchant_id)s) ON CONFLICT (id) DO NOTHING
        ), entry AS (
            INSERT INTO usage_ledger (merchant_id, job_id, usage_key, billing_period, model_id, quantity,
                                      unit_price_usd, amount_usd, details, created_at)
            SELECT %(merchant_id)s,
                   (SELECT id FROM generation_jobs WHERE id = %(job_id)s AND merchant_id = %(merchant_id)s),
                   %(usage_key)s, genjobs_billing_period_v1(%(now)s), %(model_id)s,
                   %(quantity)s, %(unit_price)s, %(amount)s, %(details)s, %(now)s
            ON CONFLICT (merchant_id, usage_key) DO NOTHING
            RETURNING id
        )
        SELECT count(*) FROM entry
        """,
        {"merchant_id": merchant_id, "usage_key": usage_key, "job_id": job_id, "model_id": model_id,
         "quantity": quantity, "unit_price": unit_price_usd, "amount": amount_usd, "details": Jsonb(details),
         "now": now},
    )
    return bool(inserted)


class DailyRow(BaseModel):
    day: date
    created: int
    completed: int
    failed: int
    canceled: int
    cost_usd: Decimal


class LedgerRow(BaseModel):
    id: int
    job_id: UUID | None
    usage_key: str
    billing_period: date
    model_id: str | None
    quantity: Decimal
    unit_price_usd: Decimal
    amount_usd: Decimal
    details: dict[str, Any]
    created_at: datetime


def read_daily(db: Database, merchant_id: str, *, days: int, now: datetime) -> list[DailyRow]:
    """The last `days` UTC days, oldest first, every day present: jobs created that day by outcome (the
    daily_job_stats view of sql/003) and the cost the ledger recorded that day. One statement."""
    return db.fetch_all(
        """
        WITH bounds AS (
            SELECT (%(now)s::timestamptz AT TIME ZONE 'UTC')::date AS today
        ), days AS (
            SELECT d::date AS day
              FROM bounds, generate_series(bounds.today - (%(days)s - 1), bounds.today, interval '1 day') AS d
        ), jobs AS (
            SELECT s.day, sum(s.jobs) AS created, sum(s.completed) AS completed, sum(s.failed) AS failed,
                   sum(s.canceled) AS canceled
              FROM daily_job_stats s, bounds
             WHERE s.merchant_id = %(merchant_id)s AND s.day > bounds.today - %(days)s
             GROUP BY s.day
        ), costs AS (
            SELECT (u.created_at AT TIME ZONE 'UTC')::date AS day, sum(u.amount_usd) AS cost_usd
              FROM usage_ledger u, bounds
             WHERE u.merchant_id = %(merchant_id)s
               AND u.created_at >= (bounds.today - (%(days)s - 1))::timestamp AT TIME ZONE 'UTC'
             GROUP BY 1
        )
        SELECT days.day, coalesce(jobs.created, 0)::int AS created, coalesce(jobs.completed, 0)::int AS completed,
               coalesce(jobs.failed, 0)::int AS failed, coalesce(jobs.canceled, 0)::int AS canceled,
               coalesce(costs.cost_usd, 0) AS cost_usd
          FROM days LEFT JOIN jobs USING (day) LEFT JOIN costs USING (day)
         ORDER BY days.day
        """,
        {"merchant_id": merchant_id, "days": days, "now": now}, row=DailyRow,
    )


def read_ledger(db: Database, merchant_id: str, *, after: tuple[datetime, int] | None, limit: int) -> list[LedgerRow]:
    """The merchant's ledger entries newest first (usage_ledger_merchant_created_id_idx), after a keyset position."""
    return db.fetch_all(
        "SELECT id, job_id, usage_key, billing_period, model_id, quantity, unit_price_usd, amount_usd, details, "
        "created_at FROM usage_ledger WHERE merchant_id = %(merchant_id)s "
        "AND (%(after_at)s::timestamptz IS NULL "
        "OR (created_at, id) < (%(after_at)s::timestamptz, %(after_id)s::bigint)) "
        "ORDER BY created_at DESC, id DESC LIMIT %(limit)s",
        {"merchant_id": merchant_id, "after_at": after[0] if after else None, "after_id": after[1] if after else None,
         "limit": limit}, row=LedgerRow,
    )
