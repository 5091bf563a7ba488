"""SQL for usage, limits and the cost ledger."""

from __future__ import annotations

from datetime import datetime, timedelta
from decimal import Decimal
from uuid import UUID

from psycopg.types.json import Jsonb

from genjobs.db import Database, Row


def read_usage(db: Database, merchant_id: str, default_hourly_limit: int, now: datetime) -> Row:
    """Window counts, costs and budget in one statement (provisions the merchant on first use)."""
    row = db.fetch_one(
        """
        WITH provisioned AS (
            INSERT INTO merchants (id) VALUES (%(merchant_id)s) ON CONFLICT (id) DO NOTHING
        ), merchant AS (
            SELECT coalesce((SELECT hourly_generation_limit FROM merchants WHERE id = %(merchant_id)s),
                            %(default_limit)s) AS hourly_limit,
                   (SELECT monthly_budget_usd FROM merchants WHERE id = %(merchant_id)s) AS monthly_budget_usd
        ), win AS (
            SELECT created_at FROM generation_jobs
             WHERE merchant_id = %(merchant_id)s AND created_at > %(now)s - interval '1 hour'
        )
        SELECT (SELECT count(*) FROM win) AS used,
               (SELECT min(created_at) FROM win) AS oldest_in_window,
               (SELECT created_at FROM win ORDER BY created_at
                 OFFSET greatest((SELECT count(*) FROM win) - (SELECT hourly_limit FROM merchant), 0)
                 LIMIT 1) AS frees_next_slot_from,
               merchant.hourly_limit, merchant.monthly_budget_usd,
               (SELECT coalesce(sum(amount_usd), 0) FROM usage_ledger
                 WHERE merchant_id = %(merchant_id)s
                   AND created_at >= date_trunc('day', %(now)s AT TIME ZONE 'UTC') AT TIME ZONE 'UTC') AS cost_today,
               (SELECT coalesce(sum(amount_usd), 0) FROM usage_ledger
                 WHERE merchant_id = %(merchant_id)s
                   AND billing_period = date_trunc('month', %(now)s AT TIME ZONE 'UTC')::date) AS cost_month
          FROM merchant
        """,
        {"merchant_id": merchant_id, "default_limit": default_hourly_limit, "now": now},
    )
    assert row is not None
    return row


def read_window(db: Database, merchant_id: str, default_hourly_limit: int, now: datetime) -> Row:
    """The sliding hour alone (the rate-limit check): no cost sums, no provisioning."""
    row = db.fetch_one(
        """
        WITH merchant AS (
            SELECT coalesce((SELECT hourly_generation_limit FROM merchants WHERE id = %(merchant_id)s),
                            %(default_limit)s) AS hourly_limit
        ), win AS (
            SELECT created_at FROM generation_jobs
             WHERE merchant_id = %(merchant_id)s AND created_at > %(now)s - interval '1 hour'
        )
        SELECT (SELECT count(*) FROM win) AS used, merchant.hourly_limit,
               (SELECT created_at FROM win ORDER BY created_at
                 OFFSET greatest((SELECT count(*) FROM win) - merchant.hourly_limit, 0)
                 LIMIT 1) AS frees_next_slot_from
          FROM merchant
        """,
        {"merchant_id": merchant_id, "default_limit": default_hourly_limit, "now": now},
    )
    assert row is not None
    return row


def read_cooldown(db: Database, merchant_id: str, persona_id: UUID) -> Row | None:
    return db.fetch_one(
        "SELECT last_variations_completed_at FROM personas "
        "WHERE id = %s AND merchant_id = %s AND deleted_at IS NULL",
        (persona_id, merchant_id),
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
                   %(usage_key)s, date_trunc('month', %(now)s AT TIME ZONE 'UTC')::date, %(model_id)s,
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


WINDOW = timedelta(hours=1)
