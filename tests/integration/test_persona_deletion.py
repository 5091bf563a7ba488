"""A deleted persona is gone everywhere: no job starts, lists, replays or charges on it once the delete
answered (hardening, fault 1 and 6)."""

from __future__ import annotations

import threading
from datetime import timedelta
from typing import Any

import pytest
from genjobs.db import Database
from genjobs.errors import Conflict, NotFound
from genjobs.ports import CursorKeys
from genjobs.services import jobs, personas

from tests.support.fakes import FrozenClock, RecordingInvoker
from tests.support.scenarios import new_persona

LIMITS = jobs.LimitSettings(default_hourly_limit=10_000, cooldown=timedelta(hours=24), max_retries=3)
ROUNDS = 30


def start(db: Database, persona: Any, clock: FrozenClock, key: str | None = None) -> jobs.StartedJob:
    return jobs.start_job(db, RecordingInvoker(), merchant_id="acme", persona_id=persona,
                          job_type="character_variations", body={"variation_count": 1}, variation_count=1, states=None,
                          prompt_variables={}, idempotency_key=key, limits=LIMITS, clock=clock,
                          worker_function="genjobs-worker")


def race(db: Database, persona: Any, clock: FrozenClock) -> dict[str, str]:
    """A delete and a start of the persona released at the same moment; what each answered."""
    barrier = threading.Barrier(2)
    results: dict[str, str] = {}

    def delete() -> None:
        barrier.wait()
        try:
            personas.delete_persona(db, "acme", persona, clock=clock)
            results["delete"] = "deleted"
        except (Conflict, NotFound) as exc:
            results["delete"] = exc.code

    def begin() -> None:
        barrier.wait()
        try:
            start(db, persona, clock)
            results["start"] = "started"
        except (Conflict, NotFound) as exc:
            results["start"] = exc.code

    threads = [threading.Thread(target=delete), threading.Thread(target=begin)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return results


def test_a_delete_and_a_start_at_the_same_moment_never_both_succeed(db: Database) -> None:
    clock = FrozenClock()
    for _ in range(ROUNDS):
        # Given a persona, when a delete and a start of it are released at the same moment
        results = race(db, new_persona(db, "acme"), clock)

        # Then exactly one of them won
        assert sorted(results.values()) in (["CONFLICT", "started"], ["NOT_FOUND", "deleted"]), results
    # And no job exists on a deleted persona
    assert db.fetch_value(
        "SELECT count(*) FROM generation_jobs j JOIN personas p ON p.id = j.persona_id WHERE p.deleted_at IS NOT NULL"
    ) == 0


def test_a_deleted_persona_lists_no_jobs_and_replays_nothing(db: Database) -> None:
    # Given a persona with a finished job started with an Idempotency-Key, then deleted
    clock = FrozenClock()
    persona = new_persona(db, "acme")
    started = start(db, persona, clock, key="first-try")
    db.execute("UPDATE generation_jobs SET status = 'canceled' WHERE id = %s", (started.job.id,))
    personas.delete_persona(db, "acme", persona, clock=clock)

    # Then listing its jobs is 404, like the persona, and a replay of the key is 404 instead of the old job
    with pytest.raises(NotFound):
        jobs.list_jobs(db, "acme", persona_id=persona, cursor_keys=CursorKeys((b"k" * 32,)))
    with pytest.raises(NotFound):
        start(db, persona, clock, key="first-try")
