"""The model registry: what merchants may choose (GET /models) and the daily lifecycle check.

The check asks Bedrock (GetFoundationModel, in each model's region) about every enabled model and records what
it says: ACTIVE -> active; LEGACY -> legacy, or eol once its end-of-life time has passed; a model Bedrock no
longer knows -> eol. It never changes `enabled` or the defaults: moving merchants to another model is an
operator's decision (a row change), and a start on an eol model is refused with 422 naming the models that can
be used, rather than failing at the provider. Legacy and eol models are counted (the ModelLegacy metric and
its alarm) and each one's end-of-life date is logged.
"""

from __future__ import annotations

import logging
from datetime import datetime

from genjobs.data import models as model_data
from genjobs.db import Database
from genjobs.models.registry import (
    AdminModel,
    AdminModelList,
    LifecycleChange,
    LifecycleReport,
    ModelList,
    ModelPatch,
)
from genjobs.ports import Clock, FoundationModelState, ModelCatalog, ProviderError
from genjobs.services.outcomes import raise_refusal

logger = logging.getLogger("genjobs.models")

SOURCE = "bedrock:GetFoundationModel modelLifecycle"


def merchant_models(db: Database) -> ModelList:
    return ModelList(items=model_data.merchant_models(db))


def lifecycle_of(state: FoundationModelState, now: datetime) -> str:
    if state.status == "GONE":
        return "eol"
    if state.status == "LEGACY":
        return "eol" if state.end_of_life is not None and state.end_of_life <= now else "legacy"
    return "active"


def check_lifecycles(db: Database, catalog: ModelCatalog, *, clock: Clock) -> LifecycleReport:
    report = LifecycleReport()
    for model in model_data.enabled_models(db):
        try:
            state = catalog.model_state(model.id, model.region)
        except ProviderError as exc:
            report.errors.append(f"{model.id}: {exc.code}")
            logger.warning("lifecycle of %s (%s) could not be read: %s", model.id, model.region, exc.message)
            continue
        now = clock()
        lifecycle = lifecycle_of(state, now)
        source = f"{SOURCE} ({model.region}) status={state.status}"
        answer = model_data.record_lifecycle(db, model_id=model.id, lifecycle=lifecycle,
                                             eol_at=state.end_of_life, source=source, now=now)
        report.checked += 1
        if answer.get("outcome") == "changed":
            report.changes.append(LifecycleChange(model_id=model.id, before=answer.get("before"), after=lifecycle,
                                                  eol_at=answer.get("eol_at")))
        if lifecycle == "active":
            continue
        (report.eol if lifecycle == "eol" else report.legacy).append(model.id)
        logger.warning(
            "model %s is %s on Amazon Bedrock (end of life: %s)%s; it stays %s: an operator moves merchants "
            "to another model", model.id, lifecycle, answer.get("eol_at") or "not announced",
            " and is a default" if model.default else "", "enabled")
    return report


def all_models(db: Database) -> AdminModelList:
    """Every configured model, for an operator."""
    return AdminModelList(items=model_data.all_models(db))


def update_model(db: Database, model_id: str, patch: ModelPatch, *, actor: str, clock: Clock) -> AdminModel:
    """Enable or disable a model, make it its kind's default, set its price (jobs started afterwards pay it); the
    change is audited. Refusals: unknown model (404), a disabled or eol default, disabling the default (409)."""
    answer = model_data.update_model(db, model_id, enabled=patch.enabled, make_default=patch.default,
                                     unit_price=patch.unit_price_usd, price_source=patch.price_source, actor=actor,
                                     now=clock())
    raise_refusal(answer, model_id=model_id)
    return next(m for m in model_data.all_models(db) if m.id == model_id)
