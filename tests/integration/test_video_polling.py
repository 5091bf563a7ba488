"""Video polling: invocations that never reported through S3 are checked with GetAsyncInvoke (Stubber)."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest
from botocore.stub import Stubber
from genjobs.adapters.bedrock import BedrockMediaProvider
from genjobs.adapters.s3 import S3MediaStore
from genjobs.db import Database
from genjobs.services import maintenance

from tests.support.fakes import MEDIA_BUCKET, FrozenClock

BUCKET = MEDIA_BUCKET
SETTINGS = maintenance.MaintenanceSettings(worker_function="w", video_report_after=timedelta(minutes=10))
STORE = S3MediaStore(BUCKET)  # only builds keys and URLs here; no S3 call is made


def arn(name: str) -> str:
    return f"arn:aws:bedrock:us-east-1:123456789012:async-invoke/{name}"


@pytest.fixture
def videos_job(db: Database) -> Any:
    """A state_videos job of an active persona, generating two states whose invocations started 11 and 12
    minutes before the test clock's now."""
    clock = FrozenClock()
    db.execute("INSERT INTO merchants (id) VALUES ('acme')")
    persona = db.fetch_value("INSERT INTO personas (merchant_id, name, status) VALUES ('acme', 'Pip', 'active') "
                             "RETURNING id")
    job = db.fetch_value(
        "INSERT INTO generation_jobs (merchant_id, persona_id, job_type, status, states_requested, model_id, "
        "attempt, lease_expires_at, current_step) VALUES ('acme', %s, 'state_videos', 'generating_videos', "
        "ARRAY['idle', 'talking'], 'amazon.nova-reel-v1:1', 1, %s, 'started_video_2_of_2') RETURNING id",
        (persona, clock() + timedelta(minutes=30)))
    for minutes, state in ((12, "idle"), (11, "talking")):
        db.execute(
            "INSERT INTO video_invocations (job_id, state, attempt, invocation_arn, client_request_token, "
            "output_s3_uri, status, started_at) VALUES (%s, %s, 1, %s, 'tok', %s, 'in_progress', %s)",
            (job, state, arn(f"inv{state}"), f"s3://{BUCKET}/jobs/{job}/{state}/",
             clock() - timedelta(minutes=minutes)))
    return job, persona, clock


def expect_status(stubber: Stubber, name: str, status: str, message: str | None = None) -> None:
    from datetime import UTC, datetime

    response: dict[str, Any] = {
        "invocationArn": arn(name), "modelArn": "arn:aws:bedrock:us-east-1::foundation-model/amazon.nova-reel-v1:1",
        "clientRequestToken": "tok", "status": status, "submitTime": datetime(2026, 11, 26, tzinfo=UTC),
        "outputDataConfig": {"s3OutputDataConfig": {"s3Uri": f"s3://{BUCKET}/x/"}},
    }
    if message:
        response["failureMessage"] = message
    stubber.add_response("get_async_invoke", response, {"invocationArn": arn(name)})


def test_completed_without_an_s3_event_is_recorded_as_if_it_came(
        db: Database, videos_job: Any, bedrock: tuple[BedrockMediaProvider, Stubber]) -> None:
    job, persona, clock = videos_job
    provider, stubber = bedrock
    expect_status(stubber, "invidle", "Completed")
    expect_status(stubber, "invtalking", "InProgress")

    report = maintenance.poll_stale_videos(db, provider, STORE, settings=SETTINGS, clock=clock)

    stubber.assert_no_pending_responses()
    assert (report.videos_checked, report.videos_completed, report.videos_failed) == (2, 1, 0)
    row = db.fetch_one("SELECT status, states_generated, progress FROM generation_jobs WHERE id = %s", (job,))
    assert row == {"status": "generating_videos", "states_generated": ["idle"], "progress": 50}
    key = f"jobs/{job}/idle/invidle/output.mp4"
    assert db.fetch_value("SELECT s3_key FROM media_outputs WHERE job_id = %s", (job,)) == key
    video_states = db.fetch_value("SELECT video_states FROM personas WHERE id = %s", (persona,))
    assert video_states == {"idle": STORE.url_for(key)}


def test_failed_invocation_fails_the_job_and_keeps_the_states_made(
        db: Database, videos_job: Any, bedrock: tuple[BedrockMediaProvider, Stubber]) -> None:
    job, _, clock = videos_job
    provider, stubber = bedrock
    expect_status(stubber, "invidle", "Completed")
    expect_status(stubber, "invtalking", "Failed", "Internal server error while rendering")

    report = maintenance.poll_stale_videos(db, provider, STORE, settings=SETTINGS, clock=clock)

    assert (report.videos_completed, report.videos_failed) == (1, 1)
    row = db.fetch_one("SELECT status, error_code, error_message, states_generated FROM generation_jobs "
                       "WHERE id = %s", (job,))
    assert row is not None
    assert (row["status"], row["error_code"]) == ("failed", "PROVIDER_FAILED")
    assert "talking" in row["error_message"] and "Internal server error" in row["error_message"]
    assert row["states_generated"] == ["idle"]
    statuses = db.fetch_all("SELECT state, status, failure_message FROM video_invocations ORDER BY state")
    assert [(s["state"], s["status"]) for s in statuses] == [("idle", "completed"), ("talking", "failed")]
    # the video the provider made before the failure is charged (sql/060): one state's seconds, once
    [entry] = db.fetch_all("SELECT job_id, quantity, amount_usd, details FROM usage_ledger")
    cost = db.fetch_value("SELECT cost_usd FROM generation_jobs WHERE id = %s", (job,))
    assert entry["job_id"] == job and entry["details"]["partial"] is True
    assert entry["quantity"] > 0 and entry["amount_usd"] == cost > 0


def test_in_progress_is_left_alone_and_not_polled_again_too_soon(
        db: Database, videos_job: Any, bedrock: tuple[BedrockMediaProvider, Stubber]) -> None:
    job, _, clock = videos_job
    provider, stubber = bedrock
    expect_status(stubber, "invidle", "InProgress")
    expect_status(stubber, "invtalking", "InProgress")
    first = maintenance.poll_stale_videos(db, provider, STORE, settings=SETTINGS, clock=clock)
    # a second sweep a minute later asks Bedrock nothing (the Stubber would fail on an unexpected call)
    clock.advance(timedelta(minutes=1))
    second = maintenance.poll_stale_videos(db, provider, STORE, settings=SETTINGS, clock=clock)
    assert (first.videos_checked, second.videos_checked) == (2, 0)
    row = db.fetch_one("SELECT status, states_generated, version FROM generation_jobs WHERE id = %s", (job,))
    assert row is not None and (row["status"], row["states_generated"], row["version"]) == ("generating_videos", [], 1)
    # and after the threshold it polls again
    clock.advance(SETTINGS.video_report_after)
    expect_status(stubber, "invidle", "InProgress")
    expect_status(stubber, "invtalking", "InProgress")
    assert maintenance.poll_stale_videos(db, provider, STORE, settings=SETTINGS, clock=clock).videos_checked == 2


def test_recent_invocations_are_not_polled(db: Database, videos_job: Any,
                                           bedrock: tuple[BedrockMediaProvider, Stubber]) -> None:
    _, _, clock = videos_job
    provider, _ = bedrock
    early = FrozenClock(clock() - timedelta(minutes=5))
    assert maintenance.poll_stale_videos(db, provider, STORE, settings=SETTINGS, clock=early).videos_checked == 0
