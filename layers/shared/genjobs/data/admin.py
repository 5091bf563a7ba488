"""SQL of the operator routes: prompt templates, merchant settings and the audit trail. Every write is a
database function of sql/061 that records its admin_audit row in the same transaction."""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal
from uuid import UUID

from psycopg.types.json import Jsonb

from genjobs.data.answers import Outcome
from genjobs.db import Database
from genjobs.models.admin import AuditEntry, MerchantOverview, PromptTemplate

_TEMPLATE_COLUMNS = """t.id, t.job_type, t.name, t.version, t.template, t.is_active, t.created_at,
    (SELECT coalesce(jsonb_object_agg(v, t.variable_defaults -> v), '{}'::jsonb) FROM unnest(t.variables) AS v)
    AS variables"""


def list_templates(db: Database, job_type: str | None) -> list[PromptTemplate]:
    return db.fetch_all(
        f"SELECT {_TEMPLATE_COLUMNS} FROM prompt_templates t "
        "WHERE %(job_type)s::text IS NULL OR t.job_type = %(job_type)s::text "
        "ORDER BY t.is_active DESC, t.job_type, t.name, t.version DESC",
        {"job_type": job_type}, row=PromptTemplate,
    )


def find_template(db: Database, template_id: UUID) -> PromptTemplate | None:
    return db.fetch_one(f"SELECT {_TEMPLATE_COLUMNS} FROM prompt_templates t WHERE t.id = %s", (template_id,),
                        row=PromptTemplate)


def create_template(db: Database, *, job_type: str, name: str, template: str, variables: list[str],
                    defaults: dict[str, str], actor: str, now: datetime) -> Outcome:
    return Outcome.model_validate(db.fetch_value(
        "SELECT genjobs_create_template_v1(%s, %s, %s, %s, %s, %s, %s)",
        (job_type, name, template, variables, Jsonb(defaults), actor, now)))


def activate_template(db: Database, template_id: UUID, *, actor: str, now: datetime) -> Outcome:
    return Outcome.model_validate(db.fetch_value("SELECT genjobs_activate_template_v1(%s, %s, %s)",
                                                 (template_id, actor, now)))


def read_merchant(db: Database, merchant_id: str, *, default_hourly_limit: int, now: datetime
                  ) -> MerchantOverview | None:
    """Settings, the limit in effect, the sliding hour, the month's money and job counts: one statement."""
    return db.fetch_one(
        """
        SELECT m.id AS merchant_id, m.hourly_generation_limit, m.monthly_budget_usd, m.created_at, m.updated_at,
               w.hourly_limit AS effective_hourly_limit, w.used AS generations_last_hour,
               c.spent_usd AS cost_this_month_usd, c.reserved_usd,
               s.total_cost_usd, s.persona_count, s.job_count, s.completed_jobs, s.failed_jobs, s.active_jobs
          FROM merchants m
          CROSS JOIN LATERAL genjobs_rate_window_v1(m.id, %(default_limit)s, %(now)s) AS w
          CROSS JOIN LATERAL genjobs_month_commitment_v1(m.id, %(now)s) AS c
          JOIN merchant_statistics s ON s.merchant_id = m.id
         WHERE m.id = %(merchant_id)s
        """,
        {"merchant_id": merchant_id, "default_limit": default_hourly_limit, "now": now}, row=MerchantOverview,
    )


def set_merchant_settings(db: Database, merchant_id: str, *, set_limit: bool, limit: int | None, set_budget: bool,
                          budget: Decimal | None, actor: str, now: datetime) -> Outcome:
    return Outcome.model_validate(db.fetch_value(
        "SELECT genjobs_set_merchant_settings_v1(%s, %s, %s, %s, %s, %s, %s)",
        (merchant_id, set_limit, limit, set_budget, budget, actor, now)))


def list_audit(db: Database, *, before_id: int | None, limit: int) -> list[AuditEntry]:
    """Newest first by id (the primary key): ids follow the order in which the writes happened."""
    return db.fetch_all(
        "SELECT id, actor, action, target_type, target_id, before, after, created_at FROM admin_audit "
        "WHERE %(before_id)s::bigint IS NULL OR id < %(before_id)s::bigint "
        "ORDER BY id DESC LIMIT %(limit)s",
        {"before_id": before_id, "limit": limit}, row=AuditEntry,
    )
