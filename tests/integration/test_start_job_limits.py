"""Starting jobs: exact rate limits under concurrency, cooldown and budget boundaries, idempotency."""

from __future__ import annotations

import threading
import time
import uuid
from datetime import timedelta
from decimal import Decimal
from typing import Any

import pytest
from genjobs.db import Database
from genjobs.errors import BudgetExceeded, Conflict, CooldownActive, NotFound, RateLimited, ValidationFailed
from genjobs.services import jobs

from tests.support.database import make_database
from tests.support.fakes import FrozenClock, RecordingInvoker
from tests.support.starts import new_persona, start


def complete_job(db: Database, job_id: Any, at: Any) -> None:
    db.execute("UPDATE generation_jobs SET status = 'processing' WHERE id = %s", (job_id,))
    db.execute("UPDATE generation_jobs SET status = 'completed' WHERE id = %s", (job_id,))
    db.execute("UPDATE personas SET last_variations_completed_at = %s "
               "WHERE id = (SELECT persona_id FROM generation_jobs WHERE id = %s)", (at, job_id))


def race(database: Database, merchant: str, personas: list[Any]) -> tuple[list[Any], list[RateLimited],
                                                                          list[BaseException], float]:
    """Start one job per persona, all threads released at once; return what happened to each start."""
    barrier = threading.Barrier(len(personas))
    admitted: list[Any] = []
    rejected: list[RateLimited] = []
    other: list[BaseException] = []
    lock = threading.Lock()
    invoker = RecordingInvoker()

    def attempt(persona_id: Any) -> None:
        barrier.wait()
        try:
            job = start(database, merchant, persona_id, invoker=invoker)
            with lock:
                admitted.append(job.job.id)
        except RateLimited as limited:
            with lock:
                rejected.append(limited)
        except BaseException as unexpected:  # asserted empty by the caller
            with lock:
                other.append(unexpected)

    threads = [threading.Thread(target=attempt, args=(p,)) for p in personas]
    started = time.monotonic()
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return admitted, rejected, other, time.monotonic() - started


def test_fifty_concurrent_starts_admit_exactly_the_limit_twenty_times(database_url: str) -> None:
    # Given a pool with one connection per thread, and 20 rounds of 50 threads for a fresh merchant each
    database = make_database(database_url, pool_min_size=0, pool_max_size=50)
    durations: list[float] = []
    try:
        for round_number in range(20):
            merchant = f"race-{round_number}-{uuid.uuid4().hex[:6]}"
            personas = [new_persona(database, merchant) for _ in range(50)]

            # When 50 starts race against the default limit of 10
            admitted, rejected, other, elapsed = race(database, merchant, personas)
            durations.append(elapsed)

            # Then exactly 10 jobs exist and 40 starts were rate limited
            assert other == []
            assert len(admitted) == 10 and len(rejected) == 40
            assert database.fetch_value("SELECT count(*) FROM generation_jobs WHERE merchant_id = %s",
                                        (merchant,)) == 10
            assert all(exc.retry_after_seconds >= 1 for exc in rejected)
        durations.sort()
        print(f"50-way race: median {durations[10] * 1000:.0f} ms per round, max {durations[-1] * 1000:.0f} ms")
    finally:
        database.close()


def test_rate_limit_window_slides_with_time_and_retry_after_is_exact(db: Database) -> None:
    clock = FrozenClock()
    limits = jobs.LimitSettings(default_hourly_limit=2, cooldown=timedelta(hours=24), max_retries=3)
    first = start(db, "acme", new_persona(db, "acme"), clock=clock, limits=limits)
    clock.advance(timedelta(minutes=10))
    start(db, "acme", new_persona(db, "acme"), clock=clock, limits=limits)
    clock.advance(timedelta(minutes=20))
    with pytest.raises(RateLimited) as info:
        start(db, "acme", new_persona(db, "acme"), clock=clock, limits=limits)
    # the first job leaves the window 30 minutes from now
    assert info.value.retry_after_seconds == 30 * 60
    assert info.value.details["limit"] == 2 and info.value.details["used"] == 2
    clock.advance(timedelta(minutes=30))
    third = start(db, "acme", new_persona(db, "acme"), clock=clock, limits=limits)
    assert third.job.id != first.job.id


def test_merchant_override_beats_the_default_limit(db: Database) -> None:
    db.execute("INSERT INTO merchants (id, hourly_generation_limit) VALUES ('small', 1)")
    start(db, "small", new_persona(db, "small"))
    with pytest.raises(RateLimited):
        start(db, "small", new_persona(db, "small"))


def test_cooldown_boundaries(db: Database) -> None:
    # Given a persona whose variations job completed at T
    clock = FrozenClock()
    persona = new_persona(db, "acme")
    job = start(db, "acme", persona, clock=clock)
    complete_job(db, job.job.id, clock())

    # When regeneration is asked one second before T+24h, it is refused with the exact wait
    clock.advance(timedelta(hours=24) - timedelta(seconds=1))
    with pytest.raises(CooldownActive) as info:
        start(db, "acme", persona, clock=clock)
    assert info.value.retry_after_seconds == 1

    # Then at exactly T+24h it is allowed
    clock.advance(timedelta(seconds=1))
    assert start(db, "acme", persona, clock=clock).job.status == "queued"


def test_budget_boundary(db: Database) -> None:
    # Given a monthly budget of exactly one 3-image job (3 x $0.04)
    db.execute("INSERT INTO merchants (id, monthly_budget_usd) VALUES ('thrifty', 0.12)")
    first = start(db, "thrifty", new_persona(db, "thrifty"))
    assert first.job.estimated_cost_usd == pytest.approx(0.12)

    # When a second job would need more than what is left (the first one's cost is reserved)
    with pytest.raises(BudgetExceeded) as info:
        start(db, "thrifty", new_persona(db, "thrifty"), count=1)
    assert Decimal(str(info.value.details["reserved_usd"])) == Decimal("0.12")

    # Then a canceled job frees its reservation
    db.execute("UPDATE generation_jobs SET status = 'canceled' WHERE id = %s", (first.job.id,))
    assert start(db, "thrifty", new_persona(db, "thrifty"), count=3).job.status == "queued"


def test_idempotency_replay_and_key_reuse(db: Database) -> None:
    persona = new_persona(db, "acme")
    invoker = RecordingInvoker()
    first = start(db, "acme", persona, key="req-1", invoker=invoker)
    replay = start(db, "acme", persona, key="req-1", invoker=invoker)
    assert replay.replayed and replay.job.id == first.job.id
    assert db.fetch_value("SELECT count(*) FROM generation_jobs") == 1
    assert len(invoker.calls) == 1  # a replay does not dispatch again
    with pytest.raises(Conflict, match="Idempotency-Key"):
        start(db, "acme", persona, key="req-1", count=2)
    # another merchant's identical key is a different key
    other = start(db, "globex", new_persona(db, "globex"), key="req-1")
    assert other.job.id != first.job.id


def test_second_active_job_for_a_persona_is_a_conflict(db: Database) -> None:
    persona = new_persona(db, "acme")
    first = start(db, "acme", persona)
    with pytest.raises(Conflict) as info:
        start(db, "acme", persona)
    assert info.value.details["active_job_id"] == str(first.job.id)


def test_prompt_variables_must_match_the_template(db: Database) -> None:
    persona = new_persona(db, "acme")
    with pytest.raises(ValidationFailed) as info:
        start(db, "acme", persona, variables={"style": "anime", "mood": "happy"})
    assert info.value.details["unknown"] == ["mood"] and info.value.details["missing"] == []
    db.execute("UPDATE prompt_templates SET is_active = false WHERE job_type = 'character_variations'")
    db.execute("INSERT INTO prompt_templates (job_type, name, version, template, variables, is_active) "
               "VALUES ('character_variations', 'strict', 1, '${name} in ${setting}', ARRAY['setting'], true)")
    with pytest.raises(ValidationFailed) as info:
        start(db, "acme", persona)
    assert info.value.details["missing"] == ["setting"]
    assert "missing: setting" in info.value.message
    assert start(db, "acme", persona, variables={"setting": "a forest"}).job.status == "queued"
    assert db.fetch_value("SELECT count(*) FROM generation_jobs") == 1  # rejected starts wrote nothing


def test_unknown_or_foreign_persona_is_not_found(db: Database) -> None:
    foreign = new_persona(db, "globex")
    with pytest.raises(NotFound):
        start(db, "acme", foreign)
    with pytest.raises(NotFound):
        start(db, "acme", uuid.uuid4())


def test_failed_dispatch_still_creates_the_queued_job(db: Database) -> None:
    started = start(db, "acme", new_persona(db, "acme"), invoker=RecordingInvoker(fail=True))
    assert not started.dispatched and started.job.status == "queued"
    metadata = db.fetch_value("SELECT metadata FROM generation_jobs WHERE id = %s", (started.job.id,))
    assert "dispatch_error" in metadata


def test_start_moves_a_draft_persona_to_generating(db: Database) -> None:
    persona = new_persona(db, "acme")
    start(db, "acme", persona)
    assert db.fetch_value("SELECT status FROM personas WHERE id = %s", (persona,)) == "generating"


def test_rate_limit_check_agrees_with_the_start_path(db: Database) -> None:
    from genjobs.services import limits as limit_checks

    # Given a merchant at its limit of 2, the first start 20 minutes ago
    clock = FrozenClock()
    tight = jobs.LimitSettings(default_hourly_limit=2, cooldown=timedelta(hours=24), max_retries=3)
    start(db, "acme", new_persona(db, "acme"), clock=clock, limits=tight)
    clock.advance(timedelta(minutes=20))
    before = limit_checks.check_rate_limit(db, "acme", default_hourly_limit=2, clock=clock)
    start(db, "acme", new_persona(db, "acme"), clock=clock, limits=tight)

    # When the trusted check is asked, it says what a start would get: refused for 40 more minutes
    after = limit_checks.check_rate_limit(db, "acme", default_hourly_limit=2, clock=clock)
    with pytest.raises(RateLimited) as info:
        start(db, "acme", new_persona(db, "acme"), clock=clock, limits=tight)
    assert (before.allowed, before.used, before.remaining) == (True, 1, 1)
    assert (after.allowed, after.used, after.remaining) == (False, 2, 0)
    assert after.retry_after_seconds == info.value.retry_after_seconds == 40 * 60
