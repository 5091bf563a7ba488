"""Approving variations: the rules, and exactly one approved variation per persona under concurrency."""

from __future__ import annotations

import threading
from datetime import timedelta
from typing import Any
from uuid import UUID

import pytest
from genjobs.db import Database, record_statements
from genjobs.errors import Conflict, NotFound
from genjobs.services import approval

from local_runner.media import LocalMediaStore
from tests.support.database import make_database
from tests.support.fakes import FrozenClock
from tests.support.scenarios import LIMITS, persona_with_variations, start_job

COOLDOWN = LIMITS.cooldown


def approve(db: Database, persona: UUID, variation: UUID, merchant: str = "acme",
            clock: FrozenClock | None = None) -> tuple[Any, bool]:
    return approval.approve_variation(db, merchant, persona, variation, cooldown=COOLDOWN, clock=clock or FrozenClock())


def approved_ids(db: Database, persona: UUID) -> list[UUID]:
    return [r["id"] for r in db.fetch_all("SELECT id FROM character_variations WHERE persona_id = %s AND approved",
                                          (persona,))]


def test_approval_activates_the_persona_in_one_statement(db: Database, store: LocalMediaStore) -> None:
    # Given a persona pending approval with three variations
    clock = FrozenClock()
    persona, job_id, variations = persona_with_variations(db, "acme", store, clock=clock)
    assert db.fetch_value("SELECT status FROM personas WHERE id = %s", (persona,)) == "pending_approval"

    # When the merchant approves the second one
    with record_statements() as recorder:
        result, changed = approve(db, persona, variations[1], clock=clock)

    # Then one statement made the persona active with that image, and the variation is the approved one
    assert recorder.count == 1, recorder.statements
    assert changed and result.status == "active" and result.approved_variation_id == variations[1]
    assert result.image_url == store.url_for(f"jobs/{job_id}/variations/1.png")
    assert result.regeneration_available_at == clock() + COOLDOWN
    assert approved_ids(db, persona) == [variations[1]]
    assert db.fetch_value("SELECT approved_at FROM character_variations WHERE id = %s", (variations[1],)) == clock()

    # and approving it again is a no-op that changes nothing (not even the version)
    again, changed_again = approve(db, persona, variations[1], clock=clock)
    assert not changed_again and again.version == result.version


def test_changing_the_approval_clears_the_earlier_one_and_the_old_videos(db: Database,
                                                                        store: LocalMediaStore) -> None:
    clock = FrozenClock()
    persona, _, variations = persona_with_variations(db, "acme", store, clock=clock)
    approve(db, persona, variations[0])
    db.execute("UPDATE personas SET video_states = '{\"idle\": \"http://media.test/old.mp4\"}' WHERE id = %s",
               (persona,))

    result, changed = approve(db, persona, variations[2])

    assert changed and approved_ids(db, persona) == [variations[2]]
    assert result.approved_variation_id == variations[2] and result.video_states == {}
    assert db.fetch_value("SELECT approved_at FROM character_variations WHERE id = %s", (variations[0],)) is None


def test_twenty_concurrent_approvals_leave_exactly_one_approved(database_url: str, db: Database,
                                                                store: LocalMediaStore) -> None:
    # Given a persona with 20 variations (five completed jobs of four)
    clock = FrozenClock()
    persona, _, variations = persona_with_variations(db, "acme", store, clock=clock, count=4)
    for _ in range(4):
        clock.advance(timedelta(days=2))
        job = start_job(db, "acme", persona, clock=clock, job_type="character_variations", count=4)
        db.execute("UPDATE generation_jobs SET status = 'processing' WHERE id = %s", (job,))
        db.execute(
            "INSERT INTO character_variations (job_id, persona_id, merchant_id, variation_index, seed, image_url) "
            "SELECT %s, %s, 'acme', i, i, 'http://media.test/' || %s || '/' || i FROM generate_series(0, 3) i",
            (job, persona, str(job)))
        db.execute("UPDATE generation_jobs SET status = 'completed' WHERE id = %s", (job,))
    variations = [r["id"] for r in db.fetch_all("SELECT id FROM character_variations WHERE persona_id = %s",
                                                (persona,))]
    assert len(variations) == 20
    version_before = db.fetch_value("SELECT version FROM personas WHERE id = %s", (persona,))
    wide = make_database(database_url, pool_min_size=0, pool_max_size=20)
    barrier = threading.Barrier(20)
    results: list[tuple[UUID, Any]] = []
    errors: list[BaseException] = []
    lock = threading.Lock()

    def approve_one(variation: UUID) -> None:
        barrier.wait()
        try:
            persona_after, _ = approve(wide, persona, variation)
            with lock:
                results.append((variation, persona_after))
        except BaseException as exc:  # asserted empty below
            with lock:
                errors.append(exc)

    # When 20 approvals of different variations race
    threads = [threading.Thread(target=approve_one, args=(v,)) for v in variations]
    try:
        for t in threads:
            t.start()
        for t in threads:
            t.join()
    finally:
        wide.close()

    # Then each saw its own approval applied in turn, and in the end exactly one variation is approved and the
    # persona points at it, with its image
    assert errors == [] and len(results) == 20
    assert all(p.approved_variation_id == v for v, p in results)
    winner = approved_ids(db, persona)
    assert len(winner) == 1
    row = db.fetch_one("SELECT p.status, p.approved_variation_id, p.image_url = v.image_url AS same_image, p.version "
                       "FROM personas p JOIN character_variations v ON v.id = p.approved_variation_id "
                       "WHERE p.id = %s", (persona,))
    assert row is not None and row["status"] == "active" and row["approved_variation_id"] == winner[0]
    assert row["same_image"]
    # the persona's version counts the approvals: applied one after another, none lost
    assert row["version"] == version_before + 20 == max(p.version for _, p in results)
    assert sorted(p.version for _, p in results) == list(range(version_before + 1, version_before + 21))


def test_approval_rules(db: Database, store: LocalMediaStore) -> None:
    clock = FrozenClock()
    persona, _, variations = persona_with_variations(db, "acme", store, clock=clock)
    other_persona, _, other_variations = persona_with_variations(db, "acme", store, clock=clock)
    foreign_persona, _, foreign_variations = persona_with_variations(db, "globex", store, clock=clock)

    # another persona's variation, another merchant's persona or variation: not found
    for persona_id, variation_id, merchant in ((persona, other_variations[0], "acme"),
                                               (foreign_persona, foreign_variations[0], "acme"),
                                               (persona, foreign_variations[0], "acme"),
                                               (persona, variations[0], "globex"),
                                               (persona, UUID(int=1), "acme")):
        with pytest.raises(NotFound):
            approve(db, persona_id, variation_id, merchant)
    assert approved_ids(db, persona) == [] and approved_ids(db, foreign_persona) == []

    # a variation of a job that did not complete: 409 with the job's status
    approve(db, other_persona, other_variations[0])
    clock.advance(timedelta(days=2))
    running = start_job(db, "acme", other_persona, clock=clock, job_type="character_variations")
    db.execute("UPDATE generation_jobs SET status = 'processing' WHERE id = %s", (running,))
    db.execute("INSERT INTO character_variations (job_id, persona_id, merchant_id, variation_index, seed, image_url) "
               "VALUES (%s, %s, 'acme', 0, 1, 'http://media.test/x.png')", (running, other_persona))
    fresh = db.fetch_value("SELECT id FROM character_variations WHERE job_id = %s", (running,))
    with pytest.raises(Conflict) as info:
        approve(db, other_persona, fresh)
    assert info.value.details["job_status"] == "processing"


def test_approval_waits_for_running_state_videos(db: Database, store: LocalMediaStore) -> None:
    clock = FrozenClock()
    persona, _, variations = persona_with_variations(db, "acme", store, clock=clock)
    approve(db, persona, variations[0])
    videos_job = start_job(db, "acme", persona, clock=clock, job_type="state_videos", states=["idle"])
    with pytest.raises(Conflict) as info:
        approve(db, persona, variations[1])
    assert info.value.details["active_job_id"] == str(videos_job)
    assert approved_ids(db, persona) == [variations[0]]
