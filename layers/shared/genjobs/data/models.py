"""SQL of the model registry (model_configurations): what merchants may choose, and the lifecycle check's
reads and its one write (genjobs_record_model_lifecycle_v1, sql/040)."""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal
from typing import Any

from genjobs.data.answers import Outcome
from genjobs.db import Database
from genjobs.models.registry import AdminModel, ModelInfo

_MODEL_COLUMNS = (
    "model_id AS id, media_type AS kind, family, provider, name, region, unit_price_usd, pricing_unit AS unit, "
    "price_resolution, price_source, is_default AS default, lifecycle, lifecycle_checked_at, "
    "lifecycle_eol_at AS eol_at"
)


def merchant_models(db: Database) -> list[ModelInfo]:
    """The models a merchant may choose: enabled and not eol, defaults first."""
    return db.fetch_all(
        "SELECT " + _MODEL_COLUMNS + " FROM model_configurations "
        "WHERE enabled AND lifecycle IS DISTINCT FROM 'eol' ORDER BY media_type, is_default DESC, model_id",
        row=ModelInfo,
    )


def all_models(db: Database) -> list[AdminModel]:
    """Every row of the registry (the operator's view), images then videos, defaults first."""
    return db.fetch_all("SELECT " + _MODEL_COLUMNS + ", enabled FROM model_configurations "
                        "ORDER BY media_type, is_default DESC, model_id", row=AdminModel)


def update_model(db: Database, model_id: str, *, enabled: bool | None, make_default: bool | None,
                 unit_price: Decimal | None, price_source: str | None, actor: str, now: datetime) -> Outcome:
    """An operator's change of one model, audited (genjobs_update_model_v1, sql/080)."""
    return Outcome.model_validate(db.fetch_value(
        "SELECT genjobs_update_model_v1(%s, %s, %s, %s, %s, %s, %s)",
        (model_id, enabled, make_default, unit_price, price_source, actor, now)))


def enabled_models(db: Database) -> list[ModelInfo]:
    """Every enabled model, eol or not (the lifecycle check asks Bedrock about each)."""
    return db.fetch_all("SELECT " + _MODEL_COLUMNS + " FROM model_configurations WHERE enabled ORDER BY model_id",
                        row=ModelInfo)


def record_lifecycle(db: Database, *, model_id: str, lifecycle: str, eol_at: datetime | None, source: str,
                     now: datetime) -> dict[str, Any]:
    answer = db.fetch_value("SELECT genjobs_record_model_lifecycle_v1(%s, %s, %s, %s, %s)",
                            (model_id, lifecycle, eol_at, source, now))
    return dict(answer or {})
