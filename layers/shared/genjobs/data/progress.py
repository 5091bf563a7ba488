"""SQL for the progress commands and for canceling a job: each is one statement.

Every statement first locks the job's row in a CTE (`FOR UPDATE`): the row it returns is the latest
committed version, so the answer says what the job really looked like when the command ran (its status
and attempt), and the write itself is re-checked against that version. A status change that the
transition table does not allow is refused by the database trigger with SQLSTATE GJ409, which is turned
into `IllegalTransition` here, with the current status in its details.

Trusted callers may omit the merchant id (the job id is enough); when given, it must match. An attempt,
when given, fences the write: another attempt's write is refused (STALE_ATTEMPT).
"""

from __future__ import annotations

import json
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from datetime import datetime
from decimal import Decimal
from typing import Any
from uuid import UUID

import psycopg
from psycopg import sql

from genjobs.db import Database, Row
from genjobs.errors import IllegalTransition

RUNNING = ("processing", "generating_videos")
ACTIVE = ("queued", "processing", "generating_videos")

PROGRESS_COLUMNS = (
    "id", "merchant_id", "persona_id", "job_type", "status", "current_step", "progress", "states_requested",
    "states_generated", "attempt", "version", "updated_at", "cost_usd", "error_code",
)
_PROGRESS_COLUMNS = sql.SQL(", ").join(sql.Identifier("u", c) for c in PROGRESS_COLUMNS)
_TARGET_COLUMNS = sql.SQL(", ").join(sql.Identifier(c) for c in PROGRESS_COLUMNS)
# after a command: the job as written when the write applied, else the job as it was (locked, latest)
_RESULT_COLUMNS = sql.SQL(", ").join(
    sql.SQL("CASE WHEN u.id IS NULL THEN {t} ELSE {u} END AS {name}").format(
        t=sql.Identifier("t", c), u=sql.Identifier("u", c), name=sql.Identifier(c))
    for c in PROGRESS_COLUMNS
)

# The columns a step/progress command may set, and how. Only these names ever reach the SQL text.
_SETTERS: dict[str, sql.SQL] = {
    "current_step": sql.SQL("{col} = {val}"),
    # progress never moves backwards: late or reordered reports are harmless
    "progress": sql.SQL("{col} = greatest(j.{col}, {val})"),
}

# A state appended once: the expression is evaluated on the latest row version (the row is locked).
NEW_STATES = "(CASE WHEN %(state)s = ANY (j.states_generated) THEN j.states_generated " \
             "ELSE array_append(j.states_generated, %(state)s::text) END)"
STATES_PROGRESS = f"(100 * cardinality({NEW_STATES}) / greatest(cardinality(j.states_requested), 1))"


@contextmanager
def transitions_checked(job_id: UUID) -> Iterator[None]:
    """Turn the trigger's GJ409 into IllegalTransition (details: job_id, current_status, requested_status)."""
    try:
        yield
    except psycopg.DatabaseError as exc:
        if exc.sqlstate != "GJ409":
            raise
        detail: dict[str, Any] = {}
        try:
            detail = json.loads(exc.diag.message_detail or "{}")
        except ValueError:
            detail = {}
        current, requested = detail.get("from"), detail.get("to")
        raise IllegalTransition(
            f"A {current} job cannot become {requested}.",
            details={"job_id": str(job_id), "current_status": current, "requested_status": requested},
        ) from exc


def _command(
    db: Database,
    *,
    job_id: UUID,
    merchant_id: str | None,
    attempt: int | None,
    write: sql.Composable,
    write_condition: sql.Composable,
    params: Mapping[str, Any],
    extra_ctes: sql.Composable | None = None,
) -> Row | None:
    """Lock the job, apply `write` (an UPDATE ... SET list) when `write_condition` and the fences hold.

    Returns None when the job does not exist (for this merchant); otherwise a row with the job's state
    before (`before_status`, `before_attempt`, `before_version`), `applied`, and the progress columns of
    the job after the write (or as it is, when the write did not apply)."""
    query = sql.SQL(
        """
        WITH target AS (
            SELECT {target_columns} FROM generation_jobs
             WHERE id = %(job_id)s AND (%(merchant_id)s::text IS NULL OR merchant_id = %(merchant_id)s::text)
               FOR UPDATE
        ), u AS (
            UPDATE generation_jobs j
               SET {write}
              FROM target t
             WHERE j.id = t.id AND (%(attempt)s::int IS NULL OR t.attempt = %(attempt)s::int) AND ({condition})
            RETURNING j.*
        ){extra_ctes}
        SELECT t.status AS before_status, t.attempt AS before_attempt, t.version AS before_version,
               u.id IS NOT NULL AS applied, {columns}
          FROM target t LEFT JOIN u ON true
        """
    ).format(write=write, condition=write_condition, columns=_RESULT_COLUMNS, extra_ctes=extra_ctes or sql.SQL(""),
             target_columns=_TARGET_COLUMNS)
    with transitions_checked(job_id):
        return db.fetch_one(query, {**params, "job_id": job_id, "merchant_id": merchant_id, "attempt": attempt})


def update_fields(
    db: Database, *, job_id: UUID, merchant_id: str | None, attempt: int | None, fields: Mapping[str, Any]
) -> Row | None:
    """Set current_step and/or progress of a running job (the SET list comes from a whitelist)."""
    if not fields:
        raise ValueError("nothing to update")
    assignments: list[sql.Composable] = []
    params: dict[str, Any] = {}
    for name, value in fields.items():
        template = _SETTERS.get(name)
        if template is None:
            raise ValueError(f"{name!r} is not a column a progress command may set")
        assignments.append(template.format(col=sql.Identifier(name), val=sql.Placeholder(f"set_{name}")))
        params[f"set_{name}"] = value
    params["running"] = list(RUNNING)
    return _command(db, job_id=job_id, merchant_id=merchant_id, attempt=attempt,
                    write=sql.SQL(", ").join(assignments), write_condition=sql.SQL("t.status = ANY (%(running)s)"),
                    params=params)


def add_generated_state(
    db: Database, *, job_id: UUID, merchant_id: str | None, attempt: int | None, state: str, video_url: str | None
) -> Row | None:
    """Append a state to a running state-videos job once, move progress to generated/requested and, with a
    URL, set the persona's video_states entry."""
    write = sql.SQL(
        f"states_generated = {NEW_STATES}, progress = greatest(j.progress, {STATES_PROGRESS}), "
        f"current_step = 'generated_' || cardinality({NEW_STATES}) || '_of_' || cardinality(j.states_requested)"
        " || '_states'"
    )
    condition = sql.SQL("t.status = ANY (%(running)s) AND %(state)s = ANY (j.states_requested)")
    persona = sql.SQL(
        """, persona AS (
            UPDATE personas p SET video_states = p.video_states || jsonb_build_object(%(state)s::text, %(url)s::text)
              FROM u
             WHERE p.id = u.persona_id AND %(url)s::text IS NOT NULL
            RETURNING p.id
        )"""
    )
    return _command(db, job_id=job_id, merchant_id=merchant_id, attempt=attempt, write=write,
                    write_condition=condition, extra_ctes=persona,
                    params={"state": state, "url": video_url, "running": list(RUNNING)})


def mark_completed(
    db: Database, *, job_id: UUID, merchant_id: str | None, attempt: int | None, cost_usd: Decimal | None,
    now: datetime,
) -> Row | None:
    """Complete the job with its cost (given, or computed from its outputs and the model's price), charge
    the ledger once, and for a variations job hand the persona its variations. A job already completed is
    left alone (the answer says so); a failed or canceled one is refused by the transition trigger."""
    write = sql.SQL(
        """status = 'completed', progress = 100, current_step = 'completed',
           variation_urls = CASE WHEN j.job_type = 'character_variations'
                                 THEN coalesce((SELECT array_agg(v.image_url ORDER BY v.variation_index)
                                                  FROM character_variations v WHERE v.job_id = j.id), '{}')
                                 ELSE j.variation_urls END,
           cost_usd = coalesce(%(cost)s::numeric, (
               SELECT m.unit_price_usd * CASE WHEN j.job_type = 'character_variations'
                   THEN (SELECT count(*) FROM character_variations v WHERE v.job_id = j.id)
                   ELSE cardinality(j.states_generated)
                        * coalesce((j.metadata ->> 'video_duration_seconds')::numeric,
                                   (m.default_parameters ->> 'durationSeconds')::numeric, 6) END
                 FROM model_configurations m WHERE m.model_id = j.model_id), 0)"""
    )
    extra = sql.SQL(
        """, persona AS (
            UPDATE personas p
               SET status = CASE WHEN p.status IN ('draft', 'generating') THEN 'pending_approval' ELSE p.status END,
                   last_variations_completed_at = %(now)s,
                   generation_metadata = p.generation_metadata || jsonb_build_object('last_variations_job_id', u.id)
              FROM u
             WHERE p.id = u.persona_id AND u.job_type = 'character_variations'
            RETURNING p.id
        ), ledger AS (
            INSERT INTO usage_ledger (merchant_id, job_id, usage_key, billing_period, model_id, quantity,
                                      unit_price_usd, amount_usd, details)
            SELECT u.merchant_id, u.id, 'job:' || u.id, date_trunc('month', %(now)s AT TIME ZONE 'UTC')::date,
                   u.model_id, 1, u.cost_usd, u.cost_usd, jsonb_build_object('source', 'mark_completed')
              FROM u
            ON CONFLICT (merchant_id, usage_key) DO NOTHING
            RETURNING id
        )"""
    )
    return _command(db, job_id=job_id, merchant_id=merchant_id, attempt=attempt, write=write,
                    write_condition=sql.SQL("t.status <> 'completed'"), extra_ctes=extra,
                    params={"cost": cost_usd, "now": now})


def mark_failed(
    db: Database, *, job_id: UUID, merchant_id: str | None, attempt: int | None, error_code: str, error_message: str
) -> Row | None:
    """Fail the job with an error (no retry). A job already failed is left alone; a completed or canceled
    one is refused by the transition trigger. A persona still `generating` goes back to `draft`."""
    write = sql.SQL("status = 'failed', current_step = 'failed', error_code = %(code)s, error_message = %(message)s,"
                    " lease_expires_at = NULL")
    extra = sql.SQL(
        """, persona AS (
            UPDATE personas p SET status = 'draft'
              FROM u
             WHERE p.id = u.persona_id AND p.status = 'generating'
            RETURNING p.id
        )"""
    )
    return _command(db, job_id=job_id, merchant_id=merchant_id, attempt=attempt, write=write,
                    write_condition=sql.SQL("t.status <> 'failed'"), extra_ctes=extra,
                    params={"code": error_code, "message": error_message[:2000]})


def read_progress(db: Database, *, job_id: UUID, merchant_id: str | None) -> Row | None:
    return db.fetch_one(
        sql.SQL("SELECT {columns} FROM generation_jobs u "
                "WHERE u.id = %(job_id)s AND (%(merchant_id)s::text IS NULL OR u.merchant_id = %(merchant_id)s::text)"
                ).format(columns=_PROGRESS_COLUMNS),
        {"job_id": job_id, "merchant_id": merchant_id},
    )


def cancel_job(db: Database, *, merchant_id: str, job_id: UUID) -> Row | None:
    """queued / processing / generating_videos -> canceled, in one statement. Returns None when the job is
    not this merchant's; otherwise `before_status` and, when canceled, the job (`canceled` true). The
    running worker's next write names status and attempt and so matches nothing: it stops."""
    with transitions_checked(job_id):
        return db.fetch_one(
            """
            WITH target AS (
                SELECT id, status FROM generation_jobs
                 WHERE id = %(job_id)s AND merchant_id = %(merchant_id)s
                   FOR UPDATE
            ), canceled AS (
                UPDATE generation_jobs j
                   SET status = 'canceled', current_step = 'canceled', lease_expires_at = NULL
                  FROM target t
                 WHERE j.id = t.id AND t.status = ANY (%(active)s)
                RETURNING j.*
            ), persona AS (
                UPDATE personas p SET status = 'draft'
                  FROM canceled c
                 WHERE p.id = c.persona_id AND p.status = 'generating'
                RETURNING p.id
            )
            SELECT t.status AS before_status, c.id IS NOT NULL AS canceled, c.*
              FROM target t LEFT JOIN canceled c ON true
            """,
            {"job_id": job_id, "merchant_id": merchant_id, "active": list(ACTIVE)},
        )
