"""SQL for generation jobs: their state changes (each a database function of sql/013, 020 or 040, called here) and the
reads of the job API (each one statement).

Every worker write names the job's attempt and the status it expects (attempt fencing): a write from an
attempt that is no longer current, or for a job that was canceled, matches no row and changes nothing.
Every read filters on merchant_id: another merchant's job does not exist.
"""

from __future__ import annotations

import functools
from collections.abc import Mapping, Sequence
from datetime import datetime, timedelta
from decimal import Decimal
from typing import Any, LiteralString
from uuid import UUID

from psycopg import sql
from psycopg.types.json import Jsonb
from pydantic import BaseModel, ConfigDict, TypeAdapter

from genjobs.data.answers import JobAnswer, Outcome, call_writer, transitions_checked
from genjobs.db import Database
from genjobs.models.jobs import Job, JobEvent, JobProgress


class Claim(BaseModel):
    """A claimed job and what its worker needs: persona fields, template, model parameters and price."""

    model_config = ConfigDict(extra="ignore", frozen=True)

    id: UUID
    merchant_id: str
    persona_id: UUID
    job_type: str
    attempt: int
    retry_count: int
    variation_count: int | None = None
    states_requested: list[str] = []
    prompt_variables: dict[str, str] = {}
    model_id: str
    model_family: str
    model_region: str | None = None
    persona_name: str | None = None
    persona_description: str | None = None
    persona_product_name: str | None = None
    persona_character_type: str | None = None
    template_text: str | None = None
    template_defaults: dict[str, str] | None = None
    unit_price_usd: Decimal = Decimal(0)
    model_parameters: dict[str, Any] = {}
    video_seconds: Decimal
    persona_image_key: str | None = None

    def persona_fields(self) -> dict[str, str | None]:
        return {"name": self.persona_name, "description": self.persona_description,
                "product_name": self.persona_product_name, "character_type": self.persona_character_type}


def _answer(db: Database, job_id: UUID, query: LiteralString, params: Sequence[Any]) -> JobAnswer:
    with transitions_checked(job_id):
        return JobAnswer.model_validate(call_writer(db, query, params))


# -- state changes ---------------------------------------------------------------------------------------


def start_job(
    db: Database,
    *,
    merchant_id: str,
    persona_id: UUID,
    job_type: str,
    variation_count: int | None,
    states: list[str] | None,
    prompt_variables: dict[str, str],
    idempotency_key: str | None,
    request_hash: str,
    default_hourly_limit: int,
    cooldown: timedelta,
    now: datetime,
    max_retries: int,
    builtin_variables: list[str],
    builtin_defaults: dict[str, str],
    model_id: str | None = None,
) -> Outcome:
    """Every check of a start and the insert, in one round trip (genjobs_start_job_v4): `model_id` None is the
    kind's default model."""
    return Outcome.model_validate(call_writer(
        db, "genjobs_start_job_v4(%s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s)",
        (merchant_id, persona_id, job_type, variation_count, states, Jsonb(prompt_variables), idempotency_key,
         request_hash, default_hourly_limit, cooldown, now, max_retries, builtin_variables,
         Jsonb(builtin_defaults), model_id),
    ))


def claim_job(db: Database, job_id: UUID, now: datetime, lease: timedelta) -> Claim | None:
    """queued -> processing with a new attempt and a lease; None when the job is not claimable."""
    claim = call_writer(db, "genjobs_claim_job_v2(%s, %s, %s)", (job_id, now, lease))
    return None if claim is None else Claim.model_validate(claim)


def record_variation(
    db: Database, *, job_id: UUID, attempt: int, index: int, seed: int, bucket: str, key: str, url: str,
    content_type: str, size_bytes: int, width: int, height: int, progress: int, step: str,
    lease_until: datetime, prompt: str,
) -> bool:
    """Store one generated image and move the job on; False when the attempt is stale or not processing."""
    return bool(call_writer(
        db, "genjobs_record_variation_v1(%s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s)",
        (job_id, attempt, index, seed, bucket, key, url, content_type, size_bytes, width, height, progress, step,
         lease_until, prompt),
    ))


def record_state(
    db: Database, *, job_id: UUID, merchant_id: str | None, attempt: int | None, running: Sequence[str],
    state: str, url: str | None, bucket: str | None = None, key: str | None = None, size_bytes: int | None = None,
    complete_when_done: bool, now: datetime, lease: timedelta,
) -> JobAnswer:
    """One state of a state-videos job (genjobs_record_state_v2): from an S3 notification or a command; the
    job's lease is renewed to `now + lease`."""
    return _answer(db, job_id, "genjobs_record_state_v2(%s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s)",
                   (job_id, merchant_id, attempt, list(running), state, url, bucket, key, size_bytes,
                    complete_when_done, now, lease))


def report_progress(db: Database, *, job_id: UUID, merchant_id: str | None, attempt: int | None,
                    step: str | None, progress: int | None, now: datetime, lease: timedelta) -> JobAnswer:
    """A running job's step/progress (genjobs_report_progress_v2); its lease is renewed to `now + lease`."""
    return _answer(db, job_id, "genjobs_report_progress_v2(%s, %s, %s, %s, %s, %s, %s)",
                   (job_id, merchant_id, attempt, step, progress, now, lease))


def complete_job(db: Database, *, job_id: UUID, merchant_id: str | None = None, attempt: int | None = None,
                 expected: Sequence[str] | None = None, cost_usd: Decimal | None = None,
                 now: datetime) -> JobAnswer:
    """Complete the job, charge it once (genjobs_complete_job_v1)."""
    return _answer(db, job_id, "genjobs_complete_job_v1(%s, %s, %s, %s, %s, %s)",
                   (job_id, merchant_id, attempt, None if expected is None else list(expected), cost_usd, now))


def fail_job(db: Database, *, job_id: UUID, merchant_id: str | None = None, attempt: int | None = None,
             expected: Sequence[str] | None = None, retryable: bool, error_code: str, error_message: str,
             retry_at: datetime | None, now: datetime) -> JobAnswer:
    """A failed attempt: retried with backoff while retries remain and the error allows, else failed and
    charged for the outputs it has (genjobs_fail_job_v2, sql/060)."""
    return _answer(db, job_id, "genjobs_fail_job_v2(%s, %s, %s, %s, %s, %s, %s, %s, %s)",
                   (job_id, merchant_id, attempt, None if expected is None else list(expected), retryable,
                    error_code, error_message, retry_at, now))


def cancel_job(db: Database, *, merchant_id: str, job_id: UUID, now: datetime) -> JobAnswer:
    """Cancel, charge the outputs made so far (genjobs_cancel_job_v2, sql/060); the answer's job carries its
    outputs (genjobs_with_outputs_v1), in the same statement."""
    return _answer(db, job_id, "genjobs_with_outputs_v1(genjobs_cancel_job_v2(%s, %s, %s))",
                   (job_id, merchant_id, now))


def mark_dispatch_failed(db: Database, job_id: UUID, message: str) -> None:
    """Remember that the async invoke was not accepted (the re-dispatch sweep will retry it)."""
    db.execute(
        "UPDATE generation_jobs SET metadata = metadata || jsonb_build_object('dispatch_error', %s::text) "
        "WHERE id = %s AND status = 'queued'",
        (message[:500], job_id),
    )


# -- reads -----------------------------------------------------------------------------------------------

# A job as the API shows it (genjobs.models.jobs.Job), computed in SQL: `error` from error_code/error_message,
# `total_states`, money as float8, the outputs aggregated in the same statement (genjobs_job_outputs_v1,
# sql/061). A read then validates without Python per row (issue 18); prompt, metadata and request hashes
# stay inside. `j` is generation_jobs.
API_JOB_COLUMNS: LiteralString = (
    "j.id, j.merchant_id, j.persona_id, j.job_type, j.status, j.current_step, j.progress, j.variation_count, "
    "j.states_requested, j.states_generated, cardinality(j.states_requested) AS total_states, j.variation_urls, "
    "j.cost_usd::float8 AS cost_usd, j.estimated_cost_usd::float8 AS estimated_cost_usd, j.model_id, "
    "genjobs_job_outputs_v1(j.id) AS outputs, j.retry_of, "
    "CASE WHEN j.error_code IS NULL THEN NULL "
    "ELSE json_build_object('code', j.error_code, 'message', j.error_message) END AS error, "
    "j.retry_count, j.max_retries, j.attempt, j.created_at, j.started_at, j.completed_at, j.updated_at, j.version"
)
# Filters the job lists accept: the only names that can reach the SQL text. `status` is a list of statuses.
LIST_FILTERS = ("status", "persona_id", "job_type", "created_after", "created_before")

# One indexed single-row read (the primary key): what each long-poll tick costs.
_FIND_JOB: LiteralString = (
    "SELECT " + API_JOB_COLUMNS + " FROM generation_jobs j"
    " WHERE j.id = %(job_id)s AND j.merchant_id = %(merchant_id)s"
)
_PAGE_COLUMNS = sql.SQL(API_JOB_COLUMNS)
_JOB_LIST: TypeAdapter[list[Job]] = TypeAdapter(list[Job])
_CONDITIONS: dict[str, LiteralString] = {
    "status": "j.status = ANY(%(status)s)",
    "persona_id": "j.persona_id = %(persona_id)s",
    "job_type": "j.job_type = %(job_type)s",
    "created_after": "j.created_at > %(created_after)s",
    "created_before": "j.created_at < %(created_before)s",
}


def find_job(db: Database, merchant_id: str, job_id: UUID) -> Job | None:
    """One indexed single-row read (the primary key) with the job's outputs: what each long-poll tick costs."""
    return db.fetch_one(_FIND_JOB, {"job_id": job_id, "merchant_id": merchant_id}, row=Job)


def read_progress(db: Database, *, job_id: UUID, merchant_id: str | None) -> JobProgress | None:
    return db.fetch_one(
        "SELECT id, merchant_id, persona_id, job_type, status, current_step, progress, states_requested, "
        "states_generated, attempt, version, updated_at FROM generation_jobs "
        "WHERE id = %(job_id)s AND (%(merchant_id)s::text IS NULL OR merchant_id = %(merchant_id)s::text)",
        {"job_id": job_id, "merchant_id": merchant_id}, row=JobProgress,
    )


@functools.lru_cache(maxsize=128)
def _list_query(one_merchant: bool, filters: tuple[str, ...], after: bool) -> LiteralString:
    """The list statement for one combination of filters (the names come only from LIST_FILTERS), composed
    and rendered once: composing 26 identifiers on every request cost as much as a primary-key read."""
    conditions: list[sql.Composable] = []
    if one_merchant:
        conditions.append(sql.SQL("j.merchant_id = %(merchant_id)s"))
    conditions.extend(sql.SQL(_CONDITIONS[name]) for name in filters)
    if after:
        conditions.append(sql.SQL("(j.created_at, j.id) < (%(after_created_at)s, %(after_id)s)"))
    query = sql.SQL(
        """
        WITH persona_check AS (
            SELECT %(persona_id)s::uuid IS NULL
                   OR EXISTS (SELECT 1 FROM personas p
                               WHERE p.id = %(persona_id)s::uuid
                                 AND (%(merchant_id)s::text IS NULL OR p.merchant_id = %(merchant_id)s::text)
                                 AND p.deleted_at IS NULL)
                   AS persona_known
        ), page AS (
            SELECT {columns} FROM generation_jobs j
             WHERE {conditions}
             ORDER BY j.created_at DESC, j.id DESC
             LIMIT %(limit)s
        )
        SELECT c.persona_known,
               CASE WHEN c.persona_known
                    THEN (SELECT coalesce(json_agg(page ORDER BY page.created_at DESC, page.id DESC), '[]')
                            FROM page)
                    ELSE '[]' END::text AS jobs
          FROM persona_check c
        """
    ).format(columns=_PAGE_COLUMNS,
             conditions=sql.SQL(" AND ").join(conditions) if conditions else sql.SQL("true"))
    # rendered to text once (psycopg renders a Composed on every execute otherwise); every piece of it is a
    # literal of this module or a quoted identifier
    return query.as_string(None)


def list_jobs(
    db: Database,
    merchant_id: str | None,
    *,
    filters: Mapping[str, Any],
    after: tuple[datetime, UUID] | None,
    limit: int,
) -> tuple[bool, list[Job]]:
    """Jobs newest first (created_at DESC, id DESC), after a keyset position, with their outputs: one
    merchant's (generation_jobs_merchant_created_idx), or every merchant's for an operator (merchant_id None,
    generation_jobs_created_idx). Returns (persona_known, jobs): persona_known is False when a persona_id
    filter names a persona that is not this merchant's (the caller answers 404), in the same statement."""
    unknown = set(filters) - set(LIST_FILTERS)
    if unknown:
        raise ValueError(f"unsupported job filters: {sorted(unknown)}")
    params: dict[str, Any] = {"merchant_id": merchant_id, "limit": limit, "persona_id": filters.get("persona_id")}
    present: list[str] = []
    for name in LIST_FILTERS:
        value = filters.get(name)
        if value is not None:
            present.append(name)
            params[name] = list(value) if name == "status" else value
    if after is not None:
        params["after_created_at"], params["after_id"] = after
    query = _list_query(merchant_id is not None, tuple(present), after is not None)
    # the page arrives as one JSON text, parsed and validated by pydantic-core in one call: building a dict
    # per row of 26 columns and validating each in Python cost more than the query (issue 18)
    row = db.fetch_one(query, params)
    assert row is not None  # persona_check always answers one row
    return bool(row["persona_known"]), _JOB_LIST.validate_json(row["jobs"])


def retry_job(db: Database, *, job_id: UUID, actor: str, now: datetime, max_retries: int) -> JobAnswer:
    """An operator's retry of a failed or canceled job: a new queued job (genjobs_retry_job_v1, sql/061)."""
    return JobAnswer.model_validate(call_writer(db, "genjobs_retry_job_v1(%s, %s, %s, %s)",
                                                (job_id, actor, now, max_retries)))


def job_timeline(db: Database, merchant_id: str, job_id: UUID, *, after: int, limit: int) -> list[JobEvent] | None:
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
    return [JobEvent.model_validate(row) for row in rows if row["event_id"] is not None]

