"""tests/support/invariants.py: a consistent data set passes every invariant, and each invariant catches the
corruption it is there for (one deliberate partial write per case, on the test's own database clone)."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path
from typing import Any
from uuid import UUID

import psycopg
import pytest
from genjobs.data import jobs as job_data
from genjobs.db import Database
from genjobs.models.actions import PROGRESS_ACTIONS
from genjobs.services import jobs

from local_runner.media import LocalMediaStore
from tests.support.fakes import FrozenClock
from tests.support.invariants import NAMES, check_invariants
from tests.support.scenarios import approved_persona, new_persona, start_job

MERCHANT = "acme"
STATES = ["idle", "talking"]


@dataclass
class DataSet:
    active_persona: UUID
    approved_variation: UUID
    variations_job: UUID
    videos_job: UUID
    draft_persona: UUID
    queued_job: UUID


def command(db: Database, clock: FrozenClock, **payload: Any) -> Any:
    return jobs.run_command(db, PROGRESS_ACTIONS.validate_python(payload), clock=clock)


def build(db: Database, tmp_path: Path) -> DataSet:
    """An active persona whose state videos were completed through the progress commands (the way a trusted
    external worker does it), a draft persona, and a queued variations job of a third persona."""
    clock = FrozenClock()
    store = LocalMediaStore(tmp_path, bucket="genjobs-media-test", base_url="http://media.test")
    persona, variation = approved_persona(db, MERCHANT, store, clock=clock)
    variations_job = db.fetch_value("SELECT job_id FROM character_variations WHERE id = %s", (variation,))
    videos_job = start_job(db, MERCHANT, persona, clock=clock, job_type="state_videos", states=STATES)
    claim = job_data.claim_job(db, videos_job, clock(), timedelta(minutes=5))
    assert claim is not None
    for state in STATES:
        command(db, clock, action="add_generated_state", job_id=str(videos_job), attempt=claim.attempt,
                state=state, video_url=f"https://media.test/{videos_job}/{state}.mp4")
    done = command(db, clock, action="mark_completed", job_id=str(videos_job), attempt=claim.attempt)
    assert done.status == "completed"
    draft = new_persona(db, MERCHANT, "Draft")
    waiting = new_persona(db, MERCHANT, "Waiting")
    queued = start_job(db, MERCHANT, waiting, clock=clock, job_type="character_variations", count=2)
    return DataSet(persona, variation, variations_job, videos_job, draft, queued)


Step = tuple[str, tuple[Any, ...]]


def corrupt(database_url: str, steps: list[Step]) -> None:
    with psycopg.connect(database_url, autocommit=True) as conn:
        for statement, params in steps:
            conn.execute(statement, params)


def test_a_consistent_data_set_passes_every_invariant(db: Database, database_url: str, tmp_path: Path) -> None:
    build(db, tmp_path)
    assert check_invariants(database_url, lease_grace=timedelta(minutes=1)) == []
    assert check_invariants(database_url, merchants=["nobody"]) == []


Corruption = Callable[[DataSet], list[Step]]

CORRUPTIONS: dict[str, Corruption] = {
    "job_status_legal": lambda d: [
        ("UPDATE generation_jobs SET progress = 50 WHERE id = %s", (d.videos_job,))],
    "one_active_job_per_persona": lambda d: [
        ("DROP INDEX generation_jobs_one_active_per_persona_idx", ()),
        ("INSERT INTO generation_jobs (merchant_id, persona_id, job_type, variation_count) "
         "SELECT merchant_id, persona_id, job_type, variation_count FROM generation_jobs WHERE id = %s",
         (d.queued_job,))],
    "job_persona_same_merchant": lambda d: [
        ("INSERT INTO merchants (id) VALUES ('globex')", ()),
        ("UPDATE personas SET merchant_id = 'globex' WHERE id = %s", (d.draft_persona,)),
        ("UPDATE generation_jobs SET persona_id = %s WHERE id = %s", (d.draft_persona, d.queued_job))],
    "variation_rows_agree": lambda d: [
        ("UPDATE character_variations SET persona_id = %s WHERE job_id = %s AND NOT approved",
         (d.draft_persona, d.variations_job))],
    "outputs_and_events_same_merchant": lambda d: [
        ("UPDATE job_events SET merchant_id = 'globex' WHERE job_id = %s", (d.videos_job,))],
    "approved_variation_consistent": lambda d: [
        ("UPDATE character_variations SET approved = false WHERE id = %s", (d.approved_variation,))],
    "persona_status_consistent": lambda d: [
        ("UPDATE personas SET status = 'generating' WHERE id = %s", (d.draft_persona,))],
    "states_generated_subset": lambda d: [
        ("UPDATE generation_jobs SET states_generated = states_generated || '{dance}' WHERE id = %s",
         (d.videos_job,))],
    "variations_complete": lambda d: [
        ("UPDATE generation_jobs SET variation_urls = variation_urls[1:1] WHERE id = %s", (d.variations_job,))],
    "videos_complete": lambda d: [
        ("UPDATE generation_jobs SET states_generated = states_generated[1:1] WHERE id = %s", (d.videos_job,))],
    "persona_video_states": lambda d: [
        ("UPDATE personas SET video_states = video_states - 'talking' WHERE id = %s", (d.active_persona,))],
    "ledger_once": lambda d: [
        ("INSERT INTO usage_ledger (merchant_id, job_id, usage_key, billing_period, amount_usd) "
         "VALUES (%s, %s, 'again', date_trunc('month', now())::date, 1)", (MERCHANT, d.videos_job))],
    "cost_matches_ledger": lambda d: [
        ("UPDATE generation_jobs SET cost_usd = cost_usd + 1 WHERE id = %s", (d.variations_job,))],
    "stale_leases": lambda d: [
        ("UPDATE generation_jobs SET status = 'processing', attempt = 1, "
         "lease_expires_at = now() - interval '10 minutes' WHERE id = %s", (d.queued_job,))],
}


def test_every_invariant_has_a_corruption_case() -> None:
    assert set(CORRUPTIONS) == set(NAMES)


@pytest.mark.parametrize("name", list(CORRUPTIONS))
def test_each_invariant_catches_its_corruption(name: str, db: Database, database_url: str, tmp_path: Path) -> None:
    data = build(db, tmp_path)
    corrupt(database_url, CORRUPTIONS[name](data))
    found = check_invariants(database_url, lease_grace=timedelta(minutes=1))
    assert name in {v.invariant.name for v in found}, [str(v) for v in found]
    assert all(v.sample for v in found)
    # restricted to another merchant, the corruption is not seen
    assert name not in {v.invariant.name for v in check_invariants(database_url, merchants=["nobody"],
                                                                    lease_grace=timedelta(minutes=1))}
