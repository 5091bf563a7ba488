"""Merchant settings for operators: read usage and settings, set the hourly limit and the monthly budget
(null: the deployment default / no budget). A change is read by the next start, which locks the merchant's
row (genjobs_start_job_v3): no cache to expire."""

from __future__ import annotations

from decimal import Decimal

from genjobs.data import admin as admin_data
from genjobs.db import Database
from genjobs.errors import NotFound
from genjobs.models.admin import MerchantOverview, MerchantSettingsPatch
from genjobs.ports import Clock
from genjobs.services.outcomes import raise_refusal


def get_merchant(db: Database, merchant_id: str, *, default_hourly_limit: int, clock: Clock) -> MerchantOverview:
    merchant = admin_data.read_merchant(db, merchant_id, default_hourly_limit=default_hourly_limit, now=clock())
    if merchant is None:
        raise NotFound("Merchant not found.", details={"merchant_id": merchant_id})
    return merchant


def update_settings(db: Database, merchant_id: str, patch: MerchantSettingsPatch, *, actor: str,
                    default_hourly_limit: int, clock: Clock) -> MerchantOverview:
    """Set the named settings (audited when they change), then answer the merchant as GET does."""
    given = patch.model_fields_set
    budget = patch.monthly_budget_usd
    answer = admin_data.set_merchant_settings(
        db, merchant_id, set_limit="hourly_generation_limit" in given, limit=patch.hourly_generation_limit,
        set_budget="monthly_budget_usd" in given, budget=None if budget is None else Decimal(str(budget)),
        actor=actor, now=clock())
    raise_refusal(answer, merchant_id=merchant_id)
    return get_merchant(db, merchant_id, default_hourly_limit=default_hourly_limit, clock=clock)
