"""SQL for reading jobs: one job (also each long-poll tick), keyset-paginated lists, the timeline.

Every statement filters on merchant_id: another merchant's job does not exist. Each read is one statement.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from typing import Any, LiteralString
from uuid import UUID

from psycopg import sql

from genjobs.db import Database, Row

# The columns the API shows (genjobs.models.jobs.Job); prompt, metadata and request hashes stay inside.
JOB_COLUMNS: tuple[LiteralString, ...] = (
    "id", "merchant_id", "persona_id", "job_type", "status", "current_step", "progress", "variation_count",
    "states_requested", "states_generated", "variation_urls", "cost_usd", "estimated_cost_usd", "model_id",
    "error_code", "error_message", "retry_count", "max_retries", "attempt", "created_at", "started_at",
    "completed_at", "updated_at", "version",
)
# Filters GET /jobs accepts, mapped to their columns: the only names that can reach the SQL text.
LIST_FILTERS = ("status", "persona_id", "job_type")


def _columns(alias: str | None = None) -> sql.Composable:
    if alias is None:
        return sql.SQL(", ").join(sql.Identifier(c) for c in JOB_COLUMNS)
    return sql.SQL(", ").join(sql.Identifier(alias, c) for c in JOB_COLUMNS)


# Built once: composing 25 identifiers on every long-poll tick costs more than the read itself.
_FIND_JOB: LiteralString = (
    "SELECT " + ", ".join(JOB_COLUMNS) + " FROM generation_jobs WHERE id = %(job_id)s AND merchant_id = %(merchant_id)s"
)


def find_job(db: Database, merchant_id: str, job_id: UUID) -> Row | None:
    """One indexed single-row read (the primary key): what each long-poll tick costs."""
    return db.fetch_one(_FIND_JOB, {"job_id": job_id, "merchant_id": merchant_id})


def list_jobs(
    db: Database,
    merchant_id: str,
    *,
    filters: Mapping[str, Any],
    after: tuple[datetime, UUID] | None,
    limit: int,
) -> tuple[bool, list[Row]]:
    """Jobs newest first (created_at DESC, id DESC) on generation_jobs_merchant_created_idx, after a keyset
    position. Returns (persona_known, rows): persona_known is False when a persona_id filter names a
    persona that is not this merchant's (the caller answers 404), in the same statement."""
    unknown = set(filters) - set(LIST_FILTERS)
    if unknown:
        raise ValueError(f"unsupported job filters: {sorted(unknown)}")
    params: dict[str, Any] = {"merchant_id": merchant_id, "limit": limit,
                              "persona_id": filters.get("persona_id")}
    conditions: list[sql.Composable] = [sql.SQL("j.merchant_id = %(merchant_id)s")]
    for name in LIST_FILTERS:
        if filters.get(name) is not None:
            conditions.append(sql.SQL("{} = {}").format(sql.Identifier("j", name), sql.Placeholder(name)))
            params[name] = filters[name]
    if after is not None:
        conditions.append(sql.SQL("(j.created_at, j.id) < (%(after_created_at)s, %(after_id)s)"))
        params["after_created_at"], params["after_id"] = after
    query = sql.SQL(
        """
        WITH persona_check AS (
            SELECT %(persona_id)s::uuid IS NULL
                   OR EXISTS (SELECT 1 FROM personas p
                               WHERE p.id = %(persona_id)s::uuid AND p.merchant_id = %(merchant_id)s)
                   AS persona_known
        ), page AS (
            SELECT {columns} FROM generation_jobs j
             WHERE {conditions}
             ORDER BY j.created_at DESC, j.id DESC
             LIMIT %(limit)s
        )
        SELECT c.persona_known, page.*
          FROM persona_check c LEFT JOIN page ON c.persona_known
         ORDER BY page.created_at DESC, page.id DESC
        """
    ).format(columns=_columns("j"), conditions=sql.SQL(" AND ").join(conditions))
    rows = db.fetch_all(query, params)
    persona_known = bool(rows and rows[0]["persona_known"])
    return persona_known, [row for row in rows if row["id"] is not None]


def job_timeline(db: Database, merchant_id: str, job_id: UUID, *, after: int, limit: int) -> list[Row] | None:
    """The job's timeline events with id > after, oldest first; None when the job is not this merchant's.
    A job archived by the retention sweep has its timeline in job_archives.events: read from there."""
    rows = db.fetch_all(
        """
        WITH job AS (
            SELECT id FROM generation_jobs WHERE id = %(job_id)s AND merchant_id = %(merchant_id)s
        )
        SELECT job.id AS job_id, e.*
          FROM job
          LEFT JOIN LATERAL (
              SELECT * FROM (
                  SELECT ev.id AS event_id, ev.event_type, ev.status, ev.current_step, ev.progress, ev.attempt,
                         ev.details, ev.created_at
                    FROM job_events ev
                   WHERE ev.job_id = job.id AND ev.id > %(after)s
                  UNION ALL
                  SELECT (a.e ->> 'id')::bigint, a.e ->> 'event_type', a.e ->> 'status', a.e ->> 'current_step',
                         (a.e ->> 'progress')::smallint, (a.e ->> 'attempt')::integer, a.e -> 'details',
                         (a.e ->> 'created_at')::timestamptz
                    FROM job_archives ja, jsonb_array_elements(ja.events) AS a(e)
                   WHERE ja.job_id = job.id AND (a.e ->> 'id')::bigint > %(after)s
              ) merged
               ORDER BY event_id
               LIMIT %(limit)s
          ) e ON true
         ORDER BY e.event_id
        """,
        {"job_id": job_id, "merchant_id": merchant_id, "after": after, "limit": limit},
    )
    if not rows:
        return None
    return [row for row in rows if row["event_id"] is not None]
