"""The job worker with Bedrock stubbed (botocore Stubber) and S3 faked (moto), on a real PostgreSQL."""

from __future__ import annotations

import threading
from datetime import timedelta
from decimal import Decimal
from typing import Any

from botocore.stub import Stubber
from genjobs.adapters.bedrock import BedrockMediaProvider
from genjobs.adapters.s3 import S3MediaStore
from genjobs.data import jobs as job_data
from genjobs.db import Database
from genjobs.services import worker

from tests.support.fakes import MEDIA_BUCKET, FrozenClock, stub_image_error, stub_images
from tests.support.starts import new_persona, start

SETTINGS = worker.WorkerSettings(lease=timedelta(minutes=5), retry_backoff=timedelta(seconds=10))
BUCKET = MEDIA_BUCKET


def run(db: Database, provider: Any, s3: Any, job_id: Any, clock: FrozenClock) -> worker.RunOutcome:
    return worker.run_job(db, provider, S3MediaStore(BUCKET, client=s3), job_id, settings=SETTINGS, clock=clock)


def test_happy_path_three_variations(db: Database, s3: Any, bedrock: tuple[BedrockMediaProvider, Stubber]) -> None:
    # Given a queued 3-variation job and a model that answers three times
    provider, stubber = bedrock
    clock = FrozenClock()
    persona = new_persona(db, "acme")
    job = start(db, "acme", persona, clock=clock).job
    stub_images(stubber, 3)

    # When the worker runs it
    outcome = run(db, provider, s3, job.id, clock)

    # Then it completed with three stored images, progress 33 -> 66 -> 100, and cost 3 x $0.04 charged once
    stubber.assert_no_pending_responses()
    assert outcome.status == "completed" and outcome.charged
    row = db.fetch_one("SELECT * FROM generation_jobs WHERE id = %s", (job.id,))
    assert row is not None
    assert row["status"] == "completed" and row["progress"] == 100 and row["cost_usd"] == Decimal("0.12")
    assert row["variation_urls"] == [f"https://{BUCKET}.s3.amazonaws.com/jobs/{job.id}/variations/{i}.png"
                                     for i in range(3)]
    assert "Pip" in row["prompt"] and "friendly 3D cartoon" in row["prompt"]
    progress = db.fetch_all("SELECT progress, details FROM job_events "
                            "WHERE job_id = %s AND event_type = 'step_changed' ORDER BY id", (job.id,))
    assert [p["progress"] for p in progress] == [33, 66, 100]
    # each image is on the timeline once: in the step change its statement wrote (migration 070), not in a row
    # of its own
    assert [p["details"]["output"]["url"] for p in progress] == row["variation_urls"]
    assert db.fetch_value("SELECT count(*) FROM job_events WHERE job_id = %s", (job.id,)) == 6
    keys = sorted(o["Key"] for o in s3.list_objects_v2(Bucket=BUCKET)["Contents"])
    assert keys == [f"jobs/{job.id}/variations/{i}.png" for i in range(3)]
    assert db.fetch_value("SELECT count(*) FROM character_variations WHERE job_id = %s", (job.id,)) == 3
    seeds = db.fetch_all("SELECT seed FROM character_variations WHERE job_id = %s", (job.id,))
    assert len({s["seed"] for s in seeds}) == 3
    ledger = db.fetch_all("SELECT usage_key, amount_usd, quantity FROM usage_ledger")
    assert ledger == [{"usage_key": f"job:{job.id}", "amount_usd": Decimal("0.120000"), "quantity": Decimal("3.000")}]
    assert db.fetch_value("SELECT status FROM personas WHERE id = %s", (persona,)) == "pending_approval"


def test_duplicate_invokes_sequential_and_concurrent_produce_one_result(
        db: Database, s3: Any, bedrock: tuple[BedrockMediaProvider, Stubber]) -> None:
    provider, stubber = bedrock
    clock = FrozenClock()
    job = start(db, "acme", new_persona(db, "acme"), clock=clock).job
    stub_images(stubber, 3)

    # When four invokes for the same job race, and one more arrives after they finished
    outcomes: list[worker.RunOutcome] = []
    barrier = threading.Barrier(4)
    lock = threading.Lock()

    def invoke_worker() -> None:
        barrier.wait()
        result = run(db, provider, s3, job.id, clock)
        with lock:
            outcomes.append(result)

    threads = [threading.Thread(target=invoke_worker) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    late = run(db, provider, s3, job.id, clock)

    # Then exactly one claimed the job; the model was called three times in all; one ledger entry
    assert sorted(o.claimed for o in outcomes) == [False, False, False, True]
    assert not late.claimed
    stubber.assert_no_pending_responses()
    assert db.fetch_value("SELECT attempt FROM generation_jobs WHERE id = %s", (job.id,)) == 1
    assert db.fetch_value("SELECT count(*) FROM media_outputs WHERE job_id = %s", (job.id,)) == 3
    assert db.fetch_value("SELECT count(*) FROM usage_ledger") == 1


def test_throttling_is_retried_with_backoff_then_fails_after_max_retries(
        db: Database, s3: Any, bedrock: tuple[BedrockMediaProvider, Stubber]) -> None:
    provider, stubber = bedrock
    clock = FrozenClock()
    job = start(db, "acme", new_persona(db, "acme"), clock=clock).job
    for attempt in range(1, 5):
        stub_image_error(stubber, "ThrottlingException", "Too many requests")
        outcome = run(db, provider, s3, job.id, clock)
        row = db.fetch_one("SELECT status, retry_count, available_at, error_code FROM generation_jobs WHERE id = %s",
                           (job.id,))
        assert row is not None
        if attempt <= 3:
            # back to the queue, not claimable before its backoff (10 s, 20 s, 40 s)
            assert (row["status"], row["retry_count"]) == ("queued", attempt)
            assert row["available_at"] == clock() + SETTINGS.backoff(attempt - 1)
            assert not run(db, provider, s3, job.id, clock).claimed
            clock.advance(SETTINGS.backoff(attempt - 1))
        else:
            assert outcome.status == "failed"
            assert (row["status"], row["retry_count"], row["error_code"]) == ("failed", 3, "PROVIDER_THROTTLED")
    stubber.assert_no_pending_responses()
    assert db.fetch_value("SELECT count(*) FROM usage_ledger") == 0
    assert db.fetch_value("SELECT status FROM personas") == "draft"


def test_content_filter_fails_at_once(db: Database, s3: Any, bedrock: tuple[BedrockMediaProvider, Stubber]) -> None:
    provider, stubber = bedrock
    job = start(db, "acme", new_persona(db, "acme")).job
    stub_image_error(stubber, "ValidationException",
                     "This request has been blocked by our content filters.")
    outcome = run(db, provider, s3, job.id, FrozenClock())
    row = db.fetch_one("SELECT status, retry_count, error_code, error_message FROM generation_jobs")
    assert outcome.status == "failed" and row is not None
    assert (row["status"], row["retry_count"], row["error_code"]) == ("failed", 0, "CONTENT_FILTERED")
    assert "content filters" in row["error_message"]


def test_validation_error_fails_with_provider_validation(db: Database, s3: Any,
                                                         bedrock: tuple[BedrockMediaProvider, Stubber]) -> None:
    provider, stubber = bedrock
    job = start(db, "acme", new_persona(db, "acme")).job
    stub_image_error(stubber, "ValidationException", "Malformed input request: height must be a multiple of 64")
    run(db, provider, s3, job.id, FrozenClock())
    assert db.fetch_value("SELECT error_code FROM generation_jobs WHERE id = %s", (job.id,)) == "PROVIDER_VALIDATION"


def test_stale_attempt_writes_are_refused(db: Database) -> None:
    # Given attempt 1 claimed the job, then lost it (lease rescue put it back and attempt 2 claimed it)
    clock = FrozenClock()
    job = start(db, "acme", new_persona(db, "acme"), clock=clock).job
    first = job_data.claim_job(db, job.id, clock(), timedelta(minutes=5))
    db.execute("UPDATE generation_jobs SET status = 'queued' WHERE id = %s", (job.id,))
    second = job_data.claim_job(db, job.id, clock(), timedelta(minutes=5))
    assert first is not None and second is not None and (first.attempt, second.attempt) == (1, 2)

    # When attempt 1 tries to record an output, complete, or fail the job
    recorded = job_data.record_variation(
        db, job_id=job.id, attempt=1, index=0, seed=1, bucket="b", key="k", url="u", content_type="image/png",
        size_bytes=1,
        width=1, height=1, progress=33, step="x", lease_until=clock(), prompt="p")
    completed = job_data.complete_job(db, job_id=job.id, attempt=1, expected=("processing",), now=clock())
    failed = job_data.fail_job(db, job_id=job.id, attempt=1, expected=("processing", "generating_videos"),
                               retryable=False, error_code="X", error_message="late", retry_at=clock(),
                               now=clock())

    # Then every write is refused and the job belongs to attempt 2, untouched
    assert (recorded, completed.outcome, failed.outcome) == (False, "stale_attempt", "stale_attempt")
    row = db.fetch_one("SELECT status, attempt, progress, cost_usd FROM generation_jobs WHERE id = %s", (job.id,))
    assert row == {"status": "processing", "attempt": 2, "progress": 0, "cost_usd": Decimal("0")}
    assert db.fetch_value("SELECT count(*) FROM media_outputs") == 0
    assert db.fetch_value("SELECT count(*) FROM usage_ledger") == 0


def test_rerun_of_the_same_attempt_does_not_charge_twice(db: Database) -> None:
    clock = FrozenClock()
    job = start(db, "acme", new_persona(db, "acme"), clock=clock).job
    claim = job_data.claim_job(db, job.id, clock(), timedelta(minutes=5))
    assert claim is not None
    for index in range(3):
        assert job_data.record_variation(
            db, job_id=job.id, attempt=1, index=index, seed=index, bucket="b", key=f"k{index}", url=f"u{index}",
            content_type="image/png", size_bytes=1, width=1, height=1, progress=33 * (index + 1), step="x",
            lease_until=clock() + timedelta(minutes=5), prompt="p")
    first = job_data.complete_job(db, job_id=job.id, attempt=1, expected=("processing",), now=clock())
    second = job_data.complete_job(db, job_id=job.id, attempt=1, expected=("processing",), now=clock())
    assert (first.outcome, first.charged) == ("completed", True)
    assert second.outcome == "not_running" and not second.charged
    # 3 images at Nova Canvas' seeded USD 0.04
    assert db.fetch_value("SELECT sum(amount_usd) FROM usage_ledger") == Decimal("0.12")


def test_canceled_job_stops_the_worker(db: Database, s3: Any, bedrock: tuple[BedrockMediaProvider, Stubber]) -> None:
    # Given the job is canceled while the worker renders its first image
    provider, stubber = bedrock
    clock = FrozenClock()
    job = start(db, "acme", new_persona(db, "acme"), clock=clock).job

    class CancelingProvider:
        def generate_image(self, request: Any) -> Any:
            db.execute("UPDATE generation_jobs SET status = 'canceled' WHERE id = %s", (job.id,))
            return provider.generate_image(request)

    stub_images(stubber, 1)
    outcome = run(db, CancelingProvider(), s3, job.id, clock)

    # Then the worker stops at its next write and nothing is recorded or charged
    assert outcome.stale
    assert db.fetch_value("SELECT status FROM generation_jobs WHERE id = %s", (job.id,)) == "canceled"
    assert db.fetch_value("SELECT count(*) FROM media_outputs") == 0
    assert db.fetch_value("SELECT count(*) FROM usage_ledger") == 0
