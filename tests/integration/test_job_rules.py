"""Job status transitions, versioning and the timeline, enforced by the database; no NOTIFY; HOT progress writes."""

from __future__ import annotations

import json
from typing import Any

import psycopg
import pytest
from genjobs.db import Database

LEGAL = [
    ("queued", "processing"), ("queued", "failed"), ("queued", "canceled"),
    ("processing", "generating_videos"), ("processing", "completed"), ("processing", "failed"),
    ("processing", "canceled"), ("processing", "queued"),
    ("generating_videos", "completed"), ("generating_videos", "failed"), ("generating_videos", "canceled"),
    ("generating_videos", "queued"),
]
STATUSES = ["queued", "processing", "generating_videos", "completed", "failed", "canceled"]
ILLEGAL = [(a, b) for a in STATUSES for b in STATUSES if a != b and (a, b) not in LEGAL]


def new_job(db: Database, status: str = "queued") -> Any:
    db.execute("INSERT INTO merchants (id) VALUES ('acme') ON CONFLICT DO NOTHING")
    persona = db.fetch_value("INSERT INTO personas (merchant_id, name) VALUES ('acme', 'Pip') RETURNING id")
    extra = ", completed_at, error_code" if status in ("completed", "failed", "canceled") else ""
    values = ", now(), 'X'" if extra else ""
    return db.fetch_value(
        f"INSERT INTO generation_jobs (merchant_id, persona_id, job_type, variation_count, status{extra}) "
        f"VALUES ('acme', %s, 'character_variations', 3, %s{values}) RETURNING id", (persona, status))


def set_status(db: Database, job_id: Any, status: str) -> None:
    db.execute("UPDATE generation_jobs SET status = %s, error_code = coalesce(error_code, 'E') WHERE id = %s",
               (status, job_id))


@pytest.mark.parametrize(("from_status", "to_status"), LEGAL)
def test_legal_transitions_are_allowed(db: Database, from_status: str, to_status: str) -> None:
    job = new_job(db, from_status)
    set_status(db, job, to_status)
    assert db.fetch_value("SELECT status FROM generation_jobs WHERE id = %s", (job,)) == to_status


@pytest.mark.parametrize(("from_status", "to_status"), ILLEGAL)
def test_illegal_transitions_are_rejected(db: Database, from_status: str, to_status: str) -> None:
    # Given a job in from_status
    job = new_job(db, from_status)

    # When a writer tries to move it to a status the table does not allow
    with pytest.raises(psycopg.DatabaseError) as info:
        set_status(db, job, to_status)

    # Then the database refuses with GJ409 and says what was attempted, and nothing changed
    assert info.value.sqlstate == "GJ409"
    assert json.loads(info.value.diag.message_detail or "{}")["to"] == to_status
    assert db.fetch_value("SELECT status FROM generation_jobs WHERE id = %s", (job,)) == from_status


def test_version_bumps_on_change_only_and_timeline_records_changes(db: Database) -> None:
    job = new_job(db)
    assert db.fetch_value("SELECT version FROM generation_jobs WHERE id = %s", (job,)) == 1

    db.execute("UPDATE generation_jobs SET progress = progress WHERE id = %s", (job,))  # no real change
    assert db.fetch_value("SELECT version FROM generation_jobs WHERE id = %s", (job,)) == 1

    db.execute("UPDATE generation_jobs SET status = 'processing', current_step = 'rendering' WHERE id = %s", (job,))
    db.execute("UPDATE generation_jobs SET current_step = 'uploading', progress = 50 WHERE id = %s", (job,))
    db.execute("UPDATE generation_jobs SET status = 'completed', progress = 100 WHERE id = %s", (job,))

    row = db.fetch_one("SELECT version, started_at, completed_at FROM generation_jobs WHERE id = %s", (job,))
    assert row is not None
    assert row["version"] == 4
    assert row["started_at"] is not None and row["completed_at"] >= row["started_at"]
    events = db.fetch_all("SELECT event_type, status, current_step FROM job_events WHERE job_id = %s ORDER BY id",
                          (job,))
    assert [(e["event_type"], e["status"], e["current_step"]) for e in events] == [
        ("created", "queued", None),
        ("status_changed", "processing", "rendering"),
        ("step_changed", "processing", "uploading"),
        ("status_changed", "completed", "uploading"),
    ]


def test_job_changes_send_no_notification(db: Database, database_url: str) -> None:
    # Given a listener on its own connection (nothing in genjobs listens: migration 070 removed the NOTIFY,
    # which serialized every job write's commit on the cluster-wide notify lock)
    with psycopg.connect(database_url, autocommit=True) as listener:
        listener.execute("LISTEN job_events")

        # When a job is created and changed, and then a sentinel is sent on the same channel
        job = new_job(db)
        db.execute("UPDATE generation_jobs SET status = 'processing', progress = 10 WHERE id = %s", (job,))
        db.execute("SELECT pg_notify('job_events', 'sentinel')")
        payloads = [n.payload for n in listener.notifies(timeout=5.0, stop_after=1)]

    # Then the first notification to arrive is the sentinel (notifications arrive in commit order)
    assert payloads == ["sentinel"]


def test_progress_writes_are_heap_only_tuple_updates(db: Database) -> None:
    # Given a running job (status changes are never HOT: status is in the partial indexes' predicates)
    job = new_job(db)
    db.execute("UPDATE generation_jobs SET status = 'processing', lease_expires_at = now() + interval '1 minute' "
               "WHERE id = %s", (job,))

    # When its worker reports three steps, each renewing the lease, in one transaction
    with db.transaction() as session:
        for n in (1, 2, 3):
            session.execute("UPDATE generation_jobs SET current_step = %s, progress = %s, "
                            "lease_expires_at = now() + %s * interval '1 minute' WHERE id = %s",
                            (f"step_{n}", 30 * n, n + 1, job))
        counts = session.fetch_one("SELECT n_tup_upd, n_tup_hot_upd FROM pg_stat_xact_user_tables "
                                   "WHERE relname = 'generation_jobs'")

    # Then all three were HOT: no column of any index of generation_jobs changed (the lease is not indexed)
    assert counts == {"n_tup_upd": 3, "n_tup_hot_upd": 3}


def test_one_active_job_per_persona(db: Database) -> None:
    job = new_job(db)
    persona = db.fetch_value("SELECT persona_id FROM generation_jobs WHERE id = %s", (job,))
    with pytest.raises(psycopg.errors.UniqueViolation):
        db.execute("INSERT INTO generation_jobs (merchant_id, persona_id, job_type, variation_count) "
                   "VALUES ('acme', %s, 'character_variations', 2)", (persona,))
    set_status(db, job, "canceled")
    db.execute("INSERT INTO generation_jobs (merchant_id, persona_id, job_type, variation_count) "
               "VALUES ('acme', %s, 'character_variations', 2)", (persona,))


def test_one_approved_variation_per_persona(db: Database) -> None:
    job = new_job(db)
    persona = db.fetch_value("SELECT persona_id FROM generation_jobs WHERE id = %s", (job,))
    for index in range(2):
        db.execute("INSERT INTO character_variations (job_id, persona_id, merchant_id, variation_index, seed, "
                   "image_url, approved) VALUES (%s, %s, 'acme', %s, %s, 'u', %s)",
                   (job, persona, index, index, index == 0))
    with pytest.raises(psycopg.errors.UniqueViolation):
        db.execute("UPDATE character_variations SET approved = true WHERE variation_index = 1")


@pytest.mark.parametrize("function", ["genjobs_rate_window_v1", "genjobs_job_cost_v1"])
def test_the_rules_the_state_changes_call_keep_their_plans(db: Database, function: str) -> None:
    """A LANGUAGE sql function called from PL/pgSQL with a row argument or a record result is not inlined, and
    PostgreSQL plans its statements on every call (sql/093 measured 0.6-0.7 ms per job for these two); as
    PL/pgSQL its plans are cached per backend."""
    language = db.fetch_value(
        "SELECT l.lanname FROM pg_proc p JOIN pg_language l ON l.oid = p.prolang WHERE p.proname = %s", (function,))
    assert language == "plpgsql"
