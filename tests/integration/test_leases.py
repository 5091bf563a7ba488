"""Leases are renewed by progress (issue 12, fault 2): a worker that reports, or a state that arrives, keeps
the job out of the rescue sweep; the sweep still finds a job once reports stop, within one lease."""

from __future__ import annotations

from datetime import timedelta

from genjobs.data import jobs as job_data
from genjobs.db import Database
from genjobs.models.actions import PROGRESS_ACTIONS
from genjobs.services import jobs, maintenance
from genjobs.settings import Settings

from tests.support.fakes import FrozenClock, RecordingInvoker
from tests.support.scenarios import new_persona, start_job

LEASE = timedelta(seconds=60)
SWEEP = maintenance.MaintenanceSettings(worker_function="genjobs-generation")


def _rescued(db: Database, clock: FrozenClock) -> int:
    return maintenance.rescue_stale_jobs(db, RecordingInvoker(), settings=SWEEP, clock=clock).rescued


def test_progress_reports_renew_the_lease_and_silence_lets_rescue_find_the_job(db: Database) -> None:
    # Given a claimed variations job with a 60 s lease
    clock = FrozenClock()
    persona = new_persona(db, "acme")
    job_id = start_job(db, "acme", persona, clock=clock, job_type="character_variations", count=2)
    claim = job_data.claim_job(db, job_id, clock(), LEASE)
    assert claim is not None

    # When its worker reports progress 50 s in, and the sweep runs 80 s in (past the claim's lease)
    clock.advance(timedelta(seconds=50))
    jobs.run_command(db, PROGRESS_ACTIONS.validate_python(
        {"action": "update_progress", "job_id": str(job_id), "attempt": claim.attempt, "progress": 40}),
        clock=clock, lease=LEASE)
    clock.advance(timedelta(seconds=30))

    # Then the job is not rescued: its lease runs from the report
    assert _rescued(db, clock) == 0
    assert db.fetch_value("SELECT lease_expires_at FROM generation_jobs WHERE id = %s", (job_id,)) \
        == clock() - timedelta(seconds=30) + LEASE

    # When the worker falls silent for one lease, Then the sweep re-queues the job
    clock.advance(LEASE)
    assert _rescued(db, clock) == 1


def test_a_delivered_state_renews_the_lease_and_never_shortens_it(db: Database) -> None:
    # Given a state-videos job in its video phase, leased until +10 min
    clock = FrozenClock()
    persona = new_persona(db, "acme")
    db.execute("UPDATE personas SET status = 'active' WHERE id = %s", (persona,))
    job_id = start_job(db, "acme", persona, clock=clock, job_type="state_videos", states=["idle", "talking"])
    claim = job_data.claim_job(db, job_id, clock(), LEASE)
    assert claim is not None
    db.execute("UPDATE generation_jobs SET status = 'generating_videos', lease_expires_at = %s WHERE id = %s",
               (clock() + timedelta(minutes=10), job_id))

    # When a state arrives 9 minutes in with a 30-minute video lease
    clock.advance(timedelta(minutes=9))
    job_data.record_state(db, job_id=job_id, merchant_id=None, attempt=None, running=("generating_videos",),
                          state="idle", url="https://media.test/idle.mp4", complete_when_done=True, now=clock(),
                          lease=timedelta(minutes=30))
    # Then the lease runs 30 minutes from the delivery
    assert db.fetch_value("SELECT lease_expires_at FROM generation_jobs WHERE id = %s", (job_id,)) \
        == clock() + timedelta(minutes=30)

    # When a progress report with the short lease follows, Then it does not shorten the video lease
    jobs.run_command(db, PROGRESS_ACTIONS.validate_python(
        {"action": "update_current_step", "job_id": str(job_id), "step": "waiting"}), clock=clock, lease=LEASE)
    assert db.fetch_value("SELECT lease_expires_at FROM generation_jobs WHERE id = %s", (job_id,)) \
        == clock() + timedelta(minutes=30)


def test_video_lease_is_a_bounded_setting() -> None:
    # Given/When the environment's video lease, Then it is read with bounds (JOB_VIDEO_LEASE_SECONDS)
    assert Settings(job_video_lease_seconds=600).job_video_lease == timedelta(minutes=10)
    for bad in (59, 86_401):
        try:
            Settings(job_video_lease_seconds=bad)
        except ValueError:
            continue
        raise AssertionError(f"JOB_VIDEO_LEASE_SECONDS={bad} was accepted")
