"""Data invariants of the genjobs schema, checked with SQL against a live database: what "no partial write"
means, row by row. The fuzz test (tests/e2e/test_fuzz.py) and the load run (`make load`, tests/load/) check
them after they are done; tests/integration/test_invariants.py proves that each one catches what it is
meant to.

Each invariant is one read-only query that returns the offending rows (empty: the invariant holds). They
hold at every moment, whatever is running, because every write they relate is made in one statement —
except `stale_leases`, which needs a grace period (the maintenance sweep's interval plus slack) and is
skipped without one.

Two of them assume the jobs were completed by the service's own paths (the worker, the S3 completion,
or a trusted caller that appended every state before `mark_completed`): `videos_complete` and
`persona_video_states`. A trusted caller may legitimately `mark_completed` a state-videos job with fewer
states; a workload that does so should not use them (`include`/`exclude`).
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any

import psycopg
from psycopg.rows import dict_row

SAMPLE_ROWS = 5
ACTIVE = ("queued", "processing", "generating_videos")


@dataclass(frozen=True)
class Invariant:
    name: str
    description: str
    sql: str  # selects the offending rows; %(merchants)s is NULL or an array of merchant ids to restrict to
    needs_grace: bool = False


@dataclass
class Violation:
    invariant: Invariant
    count: int
    sample: list[dict[str, Any]] = field(default_factory=list)

    def __str__(self) -> str:
        rows = "\n".join(f"      {row}" for row in self.sample)
        return f"  {self.invariant.name}: {self.count} row(s) — {self.invariant.description}\n{rows}"


_MERCHANT = "(%(merchants)s::text[] IS NULL OR {col} = ANY (%(merchants)s::text[]))"


def _scope(col: str) -> str:
    return _MERCHANT.format(col=col)


INVARIANTS: tuple[Invariant, ...] = (
    Invariant(
        "job_status_legal",
        "every job has a known status, type and progress, and the fields its status implies",
        f"""
        SELECT id, job_type, status, progress, completed_at, error_code FROM generation_jobs
         WHERE {_scope('merchant_id')} AND NOT (
               status IN ('queued', 'processing', 'generating_videos', 'completed', 'failed', 'canceled')
           AND job_type IN ('character_variations', 'state_videos')
           AND progress BETWEEN 0 AND 100
           AND (status <> 'generating_videos' OR job_type = 'state_videos')
           AND (status <> 'completed' OR progress = 100)
           AND (status NOT IN ('completed', 'failed', 'canceled') OR completed_at IS NOT NULL)
           AND (status <> 'failed' OR error_code IS NOT NULL)
           AND (status NOT IN ('queued', 'processing', 'generating_videos') OR completed_at IS NULL))
        """,
    ),
    Invariant(
        "one_active_job_per_persona",
        "a persona has at most one queued or running job",
        f"""
        SELECT persona_id, array_agg(id) AS jobs FROM generation_jobs
         WHERE status IN ('queued', 'processing', 'generating_videos') AND {_scope('merchant_id')}
         GROUP BY persona_id HAVING count(*) > 1
        """,
    ),
    Invariant(
        "job_persona_same_merchant",
        "every job's persona belongs to the job's merchant",
        f"""
        SELECT j.id, j.merchant_id, j.persona_id, p.merchant_id AS persona_merchant
          FROM generation_jobs j LEFT JOIN personas p ON p.id = j.persona_id
         WHERE {_scope('j.merchant_id')} AND (p.id IS NULL OR p.merchant_id <> j.merchant_id)
        """,
    ),
    Invariant(
        "variation_rows_agree",
        "every variation's job, persona and merchant agree, and its job is a variations job",
        f"""
        SELECT v.id, v.job_id, v.persona_id, v.merchant_id, j.persona_id AS job_persona,
               j.merchant_id AS job_merchant, j.job_type
          FROM character_variations v JOIN generation_jobs j ON j.id = v.job_id
         WHERE {_scope('v.merchant_id')}
           AND (v.persona_id <> j.persona_id OR v.merchant_id <> j.merchant_id
                OR j.job_type <> 'character_variations' OR v.variation_index >= j.variation_count)
        """,
    ),
    Invariant(
        "outputs_and_events_same_merchant",
        "every media output and timeline event carries its job's merchant",
        f"""
        SELECT 'media_outputs' AS source, m.id::text AS id, m.merchant_id, j.merchant_id AS job_merchant
          FROM media_outputs m JOIN generation_jobs j ON j.id = m.job_id
         WHERE {_scope('j.merchant_id')} AND m.merchant_id <> j.merchant_id
        UNION ALL
        SELECT 'job_events', e.id::text, e.merchant_id, j.merchant_id
          FROM job_events e JOIN generation_jobs j ON j.id = e.job_id
         WHERE {_scope('j.merchant_id')} AND e.merchant_id <> j.merchant_id
        """,
    ),
    Invariant(
        "approved_variation_consistent",
        "a persona's approved_variation_id is an approved variation of that persona, an approved variation "
        "is its persona's, and an active persona has one (with its image)",
        f"""
        SELECT p.id AS persona_id, p.status, p.approved_variation_id, p.image_url, v.persona_id AS variation_persona,
               v.approved, v.image_url AS variation_image
          FROM personas p LEFT JOIN character_variations v ON v.id = p.approved_variation_id
         WHERE {_scope('p.merchant_id')}
           AND ((p.approved_variation_id IS NOT NULL
                 AND (v.id IS NULL OR NOT v.approved OR v.persona_id <> p.id
                      OR p.image_url IS DISTINCT FROM v.image_url))
                OR (p.status = 'active' AND p.approved_variation_id IS NULL))
        UNION ALL
        SELECT v.persona_id, p.status, p.approved_variation_id, p.image_url, v.persona_id, v.approved, v.image_url
          FROM character_variations v JOIN personas p ON p.id = v.persona_id
         WHERE {_scope('p.merchant_id')} AND v.approved AND p.approved_variation_id IS DISTINCT FROM v.id
        """,
    ),
    Invariant(
        "persona_status_consistent",
        "a persona in 'generating' has an active variations job (a failed, canceled or completed one moves it on)",
        f"""
        SELECT p.id, p.status FROM personas p
         WHERE {_scope('p.merchant_id')} AND p.status = 'generating' AND p.deleted_at IS NULL
           AND NOT EXISTS (SELECT 1 FROM generation_jobs j
                            WHERE j.persona_id = p.id AND j.job_type = 'character_variations'
                              AND j.status IN ('queued', 'processing', 'generating_videos'))
        """,
    ),
    Invariant(
        "states_generated_subset",
        "states_generated holds requested states only, each once",
        f"""
        SELECT id, states_requested, states_generated FROM generation_jobs
         WHERE {_scope('merchant_id')}
           AND (NOT (states_generated <@ states_requested)
                OR cardinality(states_generated) <> (SELECT count(DISTINCT s) FROM unnest(states_generated) s)
                OR cardinality(states_requested) <> (SELECT count(DISTINCT s) FROM unnest(states_requested) s))
        """,
    ),
    Invariant(
        "variations_complete",
        "a completed variations job has variation_count images, in variation_urls and as variation rows",
        f"""
        SELECT j.id, j.variation_count, cardinality(j.variation_urls) AS urls,
               (SELECT count(*) FROM character_variations v WHERE v.job_id = j.id) AS variation_rows
          FROM generation_jobs j
         WHERE {_scope('j.merchant_id')} AND j.job_type = 'character_variations' AND j.status = 'completed'
           AND (cardinality(j.variation_urls) <> j.variation_count
                OR (SELECT count(*) FROM character_variations v WHERE v.job_id = j.id) <> j.variation_count)
        """,
    ),
    Invariant(
        "videos_complete",
        "a completed state-videos job generated every requested state",
        f"""
        SELECT id, states_requested, states_generated FROM generation_jobs
         WHERE {_scope('merchant_id')} AND job_type = 'state_videos' AND status = 'completed'
           AND NOT (states_requested <@ states_generated)
        """,
    ),
    Invariant(
        "persona_video_states",
        "the persona's video_states has every state of each state-videos job completed since its approval",
        f"""
        SELECT j.id AS job_id, j.persona_id, j.states_requested, p.video_states
          FROM generation_jobs j JOIN personas p ON p.id = j.persona_id
         WHERE {_scope('j.merchant_id')} AND j.job_type = 'state_videos' AND j.status = 'completed'
           AND p.deleted_at IS NULL
           AND j.completed_at >= coalesce((p.generation_metadata ->> 'approved_at')::timestamptz, '-infinity')
           AND EXISTS (SELECT 1 FROM unnest(j.states_requested) s WHERE NOT p.video_states ? s)
        """,
    ),
    Invariant(
        "ledger_once",
        "a job has at most one ledger entry, keyed 'job:<id>' and of its merchant",
        f"""
        SELECT job_id, count(*) AS entries, array_agg(usage_key) AS keys, array_agg(DISTINCT merchant_id) AS merchants
          FROM usage_ledger
         WHERE job_id IS NOT NULL AND {_scope('merchant_id')}
         GROUP BY job_id
        HAVING count(*) > 1 OR bool_or(usage_key <> 'job:' || job_id)
            OR bool_or(merchant_id <> (SELECT j.merchant_id FROM generation_jobs j WHERE j.id = job_id))
        """,
    ),
    Invariant(
        "cost_matches_ledger",
        "a completed job's cost_usd is its ledger amount; a job that did not complete is not charged",
        f"""
        SELECT j.id, j.status, j.cost_usd, l.amount_usd
          FROM generation_jobs j
          LEFT JOIN usage_ledger l ON l.merchant_id = j.merchant_id AND l.usage_key = 'job:' || j.id
         WHERE {_scope('j.merchant_id')}
           AND ((j.status = 'completed' AND (l.id IS NULL OR l.amount_usd <> j.cost_usd))
                OR (j.status <> 'completed' AND l.id IS NOT NULL))
        """,
    ),
    Invariant(
        "stale_leases",
        "no job stays running with a lease that expired longer ago than the rescue grace period",
        f"""
        SELECT id, status, attempt, lease_expires_at, now() - lease_expires_at AS expired_for
          FROM generation_jobs
         WHERE {_scope('merchant_id')} AND status IN ('processing', 'generating_videos')
           AND lease_expires_at < now() - %(grace)s::interval
        """,
        needs_grace=True,
    ),
)

NAMES = tuple(i.name for i in INVARIANTS)


def check_invariants(
    conninfo: str | psycopg.Connection[Any],
    *,
    merchants: Sequence[str] | None = None,
    lease_grace: timedelta | None = None,
    include: Iterable[str] | None = None,
    exclude: Iterable[str] = (),
) -> list[Violation]:
    """The violated invariants (empty: all hold). `merchants` restricts the check to their rows;
    `lease_grace` enables `stale_leases`; `include`/`exclude` pick invariants by name. `conninfo` may be an open
    connection (not autocommit) that a caller checking after every step keeps: it is rolled back after."""
    wanted = set(include) if include is not None else set(NAMES)
    unknown = (wanted | set(exclude)) - set(NAMES)
    if unknown:
        raise ValueError(f"unknown invariant(s): {sorted(unknown)}")
    wanted -= set(exclude)
    params: dict[str, Any] = {"merchants": list(merchants) if merchants is not None else None, "grace": lease_grace}
    violations: list[Violation] = []
    if isinstance(conninfo, psycopg.Connection):
        try:
            _check(conninfo, wanted, params, lease_grace, violations)
        finally:
            conninfo.rollback()
        return violations
    with psycopg.connect(conninfo) as conn:
        _check(conn, wanted, params, lease_grace, violations)
    return violations


def _check(conn: psycopg.Connection[Any], wanted: set[str], params: dict[str, Any], lease_grace: timedelta | None,
           violations: list[Violation]) -> None:
    conn.read_only = True  # one read-only transaction: every query sees the same snapshot
    with conn.cursor(row_factory=dict_row) as cur:
        for invariant in INVARIANTS:
            if invariant.name not in wanted or (invariant.needs_grace and lease_grace is None):
                continue
            rows = cur.execute(invariant.sql, params).fetchall()
            if rows:
                violations.append(Violation(invariant, len(rows), [dict(r) for r in rows[:SAMPLE_ROWS]]))


def assert_invariants(conninfo: str, **kwargs: Any) -> None:
    violations = check_invariants(conninfo, **kwargs)
    assert not violations, "data invariants violated:\n" + "\n".join(str(v) for v in violations)


def summary(conninfo: str, *, merchants: Sequence[str] | None = None) -> dict[str, int]:
    """Job counts by '<job_type>/<status>' (for reports)."""
    with psycopg.connect(conninfo, autocommit=True) as conn:
        rows = conn.execute(
            f"SELECT job_type || '/' || status, count(*) FROM generation_jobs WHERE {_scope('merchant_id')} "
            "GROUP BY 1 ORDER BY 1",
            {"merchants": list(merchants) if merchants is not None else None},
        ).fetchall()
    return {str(name): int(count) for name, count in rows}
