"""A job that stops (canceled, failed, timed out) is charged for the outputs the provider already produced,
once, whatever the order of the events (sql/060); the budget check counts it."""

from __future__ import annotations

from datetime import timedelta
from decimal import Decimal
from typing import Any
from uuid import UUID

import pytest
from genjobs.data import jobs as job_data
from genjobs.data import maintenance as maintenance_data
from genjobs.data import videos as video_data
from genjobs.db import Database
from genjobs.errors import BudgetExceeded, IllegalTransition
from genjobs.models.jobs import RUNNING_STATUSES
from genjobs.services import jobs

from tests.support.fakes import FrozenClock
from tests.support.scenarios import LIMITS, new_persona, start_job

LEASE = timedelta(minutes=5)


def image_price(db: Database) -> Decimal:
    """The default image model's price per image (the registry's seed, sql/040)."""
    price: Decimal = db.fetch_value(
        "SELECT unit_price_usd FROM model_configurations WHERE is_default AND media_type = 'image'")
    return price


def video_cost(db: Database) -> Decimal:
    """One state video of these jobs (6 seconds: videos_job records that length) at the default video model's
    price per second."""
    price: Decimal = db.fetch_value(
        "SELECT unit_price_usd FROM model_configurations WHERE is_default AND media_type = 'video'")
    return 6 * price


def ledger(db: Database, job_id: UUID) -> list[dict[str, Any]]:
    return db.fetch_all("SELECT usage_key, quantity, unit_price_usd, amount_usd, details FROM usage_ledger "
                        "WHERE job_id = %s", (job_id,))


def job_cost(db: Database, job_id: UUID) -> Decimal:
    cost: Decimal = db.fetch_value("SELECT cost_usd FROM generation_jobs WHERE id = %s", (job_id,))
    return cost


def images_job(db: Database, clock: FrozenClock, made: int, merchant: str = "acme") -> UUID:
    """A variations job of 3 images, claimed, with `made` images stored."""
    job_id = start_job(db, merchant, new_persona(db, merchant), clock=clock, job_type="character_variations")
    assert job_data.claim_job(db, job_id, clock(), LEASE) is not None
    for index in range(made):
        assert job_data.record_variation(
            db, job_id=job_id, attempt=1, index=index, seed=100 + index, bucket="b", key=f"jobs/{job_id}/{index}.png",
            url=f"http://media.test/{job_id}/{index}.png", content_type="image/png", size_bytes=10, width=1024,
            height=1024, progress=33 * (index + 1), step=f"generated_{index + 1}_of_3", lease_until=clock() + LEASE,
            prompt="p")
    return job_id


def videos_job(db: Database, clock: FrozenClock, done: list[str]) -> UUID:
    """A state-videos job of 3 states in its video phase, with the videos of `done` recorded (S3 events)."""
    persona = new_persona(db, "acme")
    db.execute("UPDATE personas SET status = 'active' WHERE id = %s", (persona,))
    job_id = start_job(db, "acme", persona, clock=clock, job_type="state_videos",
                       states=["idle", "talking", "thinking"])
    assert job_data.claim_job(db, job_id, clock(), LEASE) is not None
    assert video_data.begin_video_phase(db, job_id=job_id, attempt=1, lease_until=clock() + LEASE,
                                        metadata={"video_duration_seconds": 6}) is not None
    for state in done:
        deliver(db, job_id, state, clock)
    return job_id


def deliver(db: Database, job_id: UUID, state: str, clock: FrozenClock) -> str:
    key = f"jobs/{job_id}/{state}/inv0001/output.mp4"
    answer = job_data.record_state(db, job_id=job_id, merchant_id=None, attempt=None, running=("generating_videos",),
                                   state=state, url=f"http://media.test/{key}", bucket="b", key=key, size_bytes=2500,
                                   complete_when_done=True, now=clock(), lease=LEASE)
    return answer.outcome


def test_cancel_after_one_of_three_images_charges_one_image_once(db: Database) -> None:
    # Given a variations job that stored 1 of its 3 images
    clock = FrozenClock()
    job_id = images_job(db, clock, made=1)

    # When the merchant cancels it, and cancels it again
    canceled = jobs.cancel_job(db, "acme", job_id, clock=clock)
    with pytest.raises(IllegalTransition):
        jobs.cancel_job(db, "acme", job_id, clock=clock)

    # Then the job costs one image, and the ledger holds that one image once, marked partial
    assert canceled.status == "canceled" and canceled.cost_usd == float(image_price(db))
    assert [o.kind for o in canceled.outputs] == ["image"]
    assert job_cost(db, job_id) == image_price(db)
    [entry] = ledger(db, job_id)
    assert (entry["usage_key"], entry["quantity"], entry["amount_usd"]) == (f"job:{job_id}", 1, image_price(db))
    assert entry["details"] == {"partial": True, "status": "canceled"}


def test_a_video_job_failing_after_two_of_three_states_is_charged_two_videos(db: Database) -> None:
    # Given a state-videos job whose first two videos arrived (each S3 event delivered twice)
    clock = FrozenClock()
    job_id = videos_job(db, clock, done=["idle", "talking"])
    assert deliver(db, job_id, "idle", clock) == "duplicate"

    # When the third state's invocation fails (the maintenance poll's path), and the failure is reported again
    failed = job_data.fail_job(db, job_id=job_id, attempt=1, expected=("generating_videos",), retryable=False,
                               error_code="PROVIDER_FAILED", error_message="state thinking: failed",
                               retry_at=clock(), now=clock())
    again = job_data.fail_job(db, job_id=job_id, attempt=1, retryable=False, error_code="PROVIDER_FAILED",
                              error_message="again", retry_at=clock(), now=clock())

    # Then 2 states x 6 s x $0.08 are charged, once
    expected = 2 * video_cost(db)
    assert (failed.outcome, failed.charged, again.outcome, again.charged) == ("failed", True, "unchanged", False)
    assert job_cost(db, job_id) == expected
    [entry] = ledger(db, job_id)
    assert (entry["quantity"], entry["amount_usd"]) == (12, expected)


def test_outputs_arriving_after_the_stop_are_refused_and_never_charged(db: Database) -> None:
    # Given a video job canceled after one of its three videos
    clock = FrozenClock()
    job_id = videos_job(db, clock, done=["idle"])
    jobs.cancel_job(db, "acme", job_id, clock=clock)

    # When the other videos' S3 events arrive afterwards, and a late failure report too
    late = [deliver(db, job_id, state, clock) for state in ("talking", "thinking", "idle")]
    with pytest.raises(IllegalTransition):
        jobs.run_command(db, _mark_failed(job_id), clock=clock)

    # Then the cost stays one video, charged once
    assert late == ["not_running"] * 3
    assert job_cost(db, job_id) == video_cost(db)
    assert len(ledger(db, job_id)) == 1


def _mark_failed(job_id: UUID) -> Any:
    from genjobs.models.actions import MarkFailed

    return MarkFailed(action="mark_failed", job_id=job_id, error_code="X", error_message="late")


def test_a_retried_attempt_is_not_charged_until_the_job_stops_for_good(db: Database) -> None:
    # Given a variations job whose first attempt stored 2 images and failed with a retryable error
    clock = FrozenClock()
    job_id = images_job(db, clock, made=2)
    retried = job_data.fail_job(db, job_id=job_id, attempt=1, expected=RUNNING_STATUSES, retryable=True,
                                error_code="PROVIDER_THROTTLED", error_message="slow down", retry_at=clock(),
                                now=clock())
    assert retried.outcome == "retried" and ledger(db, job_id) == []

    # When the retry times out (its lease expires past the last retry)
    db.execute("UPDATE generation_jobs SET max_retries = retry_count WHERE id = %s", (job_id,))
    assert job_data.claim_job(db, job_id, clock(), LEASE) is not None
    clock.advance(LEASE + timedelta(seconds=1))
    rescued = maintenance_data.rescue_expired_leases(db, now=clock(), batch=10)

    # Then the job failed TIMED_OUT and is charged for the 2 images it has, once
    assert [(r["id"], r["status"]) for r in rescued] == [(job_id, "failed")]
    assert job_cost(db, job_id) == 2 * image_price(db)
    assert [e["amount_usd"] for e in ledger(db, job_id)] == [2 * image_price(db)]


def test_a_job_stopped_without_outputs_is_charged_nothing(db: Database) -> None:
    clock = FrozenClock()
    job_id = images_job(db, clock, made=0)
    canceled = jobs.cancel_job(db, "acme", job_id, clock=clock)
    assert canceled.cost_usd == 0 and ledger(db, job_id) == []


def test_the_budget_check_counts_partial_charges(db: Database) -> None:
    # Given a merchant with a $0.20 budget and a job canceled after 2 images ($0.08 charged)
    clock = FrozenClock()
    job_id = images_job(db, clock, made=2, merchant="budgeted")
    db.execute("UPDATE merchants SET monthly_budget_usd = 0.20 WHERE id = 'budgeted'")
    jobs.cancel_job(db, "budgeted", job_id, clock=clock)

    # When it starts a 3-image job ($0.12: 0.08 + 0.12 = 0.20 fits) and then another one (0.32 does not)
    first = start_job(db, "budgeted", new_persona(db, "budgeted"), clock=clock, job_type="character_variations")
    with pytest.raises(BudgetExceeded) as refused:
        start_job(db, "budgeted", new_persona(db, "budgeted"), clock=clock, job_type="character_variations")

    # Then the refusal names the partial charge as spent
    assert first is not None
    assert Decimal(str(refused.value.details["spent_usd"])) == 2 * image_price(db)
    assert LIMITS.default_hourly_limit >= 3
