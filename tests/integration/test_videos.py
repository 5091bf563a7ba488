"""State videos: the worker's Bedrock async invocations (botocore Stubber) and the S3-driven completion
(moto S3), on a real PostgreSQL."""

from __future__ import annotations

import base64
import threading
from collections import Counter
from collections.abc import Iterator
from datetime import timedelta
from decimal import Decimal
from typing import Any
from uuid import UUID

import pytest
from botocore.stub import ANY, Stubber
from genjobs.adapters.bedrock import BedrockMediaProvider
from genjobs.adapters.s3 import S3MediaStore
from genjobs.db import Database, record_statements
from genjobs.media.png import decode_png, png_size
from genjobs.models.videos import VideoRecorded
from genjobs.ports import VideoRequest
from genjobs.services import jobs, worker
from genjobs.services.worker import videos as worker_videos

from tests.support.database import make_database
from tests.support.fakes import MEDIA_BUCKET, FrozenClock, bedrock_client
from tests.support.scenarios import SETTINGS, approved_persona, start_job, video_output_key

BUCKET = MEDIA_BUCKET
STATES = ["idle", "talking", "thinking"]
LUMA_RAY2 = "luma.ray-v2:0"  # the seeded default video model (sql/040)


class RecordingBedrock(BedrockMediaProvider):
    """The real Bedrock provider on a stubbed client, remembering each video request it sent."""

    def __init__(self) -> None:
        super().__init__(bedrock_client())
        self.stubber = Stubber(self.client)
        self.requests: list[VideoRequest] = []

    def start_video(self, request: VideoRequest) -> str:
        self.requests.append(request)
        return super().start_video(request)

    def expect_start(self, job_id: UUID, attempt: int, state: str) -> str:
        arn = f"arn:aws:bedrock:us-west-2:123456789012:async-invoke/{state}{attempt}x"
        self.stubber.add_response(
            "start_async_invoke", {"invocationArn": arn},
            {"modelId": LUMA_RAY2, "modelInput": ANY,
             "outputDataConfig": {"s3OutputDataConfig": {"s3Uri": f"s3://{BUCKET}/jobs/{job_id}/{state}/"}},
             "clientRequestToken": worker_videos.client_request_token(job_id, attempt, state)})
        return arn


@pytest.fixture
def recording_bedrock() -> Iterator[RecordingBedrock]:
    provider = RecordingBedrock()
    with provider.stubber:
        yield provider


def video_job(db: Database, s3_store: S3MediaStore, clock: FrozenClock, states: list[str] = STATES,
              merchant: str = "acme") -> tuple[UUID, UUID]:
    persona, _ = approved_persona(db, merchant, s3_store, clock=clock)
    return persona, start_job(db, merchant, persona, clock=clock, job_type="state_videos", states=states)


def run(db: Database, provider: Any, s3_store: S3MediaStore, job_id: UUID, clock: FrozenClock) -> worker.RunOutcome:
    return worker.run_job(db, provider, s3_store, job_id, settings=SETTINGS, clock=clock)


def deliver(db: Database, s3_store: S3MediaStore, job_id: UUID, state: str, clock: FrozenClock) -> VideoRecorded:
    key = video_output_key(job_id, state)
    s3_store.put(key, b"\x00\x00\x00\x18ftypisom", "video/mp4")
    return worker_videos.record_video_output(db, s3_store, bucket=BUCKET, key=key, size=12, clock=clock)


def test_worker_starts_one_invocation_per_state_from_the_approved_image(
        db: Database, s3_store: S3MediaStore, recording_bedrock: RecordingBedrock) -> None:
    # Given an active persona and a queued state-videos job for three states
    clock = FrozenClock()
    persona, job_id = video_job(db, s3_store, clock)
    image_key = db.fetch_value(
        "SELECT o.s3_key FROM personas p JOIN character_variations v ON v.id = p.approved_variation_id "
        "JOIN media_outputs o ON o.id = v.media_output_id WHERE p.id = %s", (persona,))
    arns = [recording_bedrock.expect_start(job_id, 1, state) for state in STATES]

    # When the worker runs it
    with record_statements() as recorder:
        outcome = run(db, recording_bedrock, s3_store, job_id, clock)

    # Then the job is generating videos, one invocation per state was started with the approved image as the
    # keyframe, a token per job/attempt/state and the state's output prefix, and each ARN is recorded
    recording_bedrock.stubber.assert_no_pending_responses()
    assert outcome.status == "generating_videos" and outcome.attempt == 1
    assert recorder.count == 2 + 2 * 3, recorder.statements  # claim, video phase; noted + started per state
    row = db.fetch_one("SELECT status, current_step, metadata, lease_expires_at FROM generation_jobs WHERE id = %s",
                       (job_id,))
    assert row is not None and row["status"] == "generating_videos"
    assert row["current_step"] == "started_video_3_of_3" and row["metadata"]["video_duration_seconds"] == 5
    assert row["lease_expires_at"] == clock() + SETTINGS.video_lease
    # (the approved 128x128 image fitted to Luma Ray2's 720p 16:9 frame, 1280x720: its centre pixel is the image's
    # centre)
    approved = decode_png(s3_store.get(image_key))
    keyframe = recording_bedrock.requests[0].image
    assert keyframe is not None and [r.image for r in recording_bedrock.requests] == [keyframe] * 3
    assert png_size(keyframe) == (1280, 720) and {r.image_format for r in recording_bedrock.requests} == {"png"}
    width, _, _, pixels = decode_png(keyframe)
    centre = (360 * width + 640) * 3
    assert pixels[centre:centre + 3] == approved[3][(64 * 128 + 64) * 3:(64 * 128 + 64) * 3 + 3]
    assert [r.output_s3_uri for r in recording_bedrock.requests] == [
        f"s3://{BUCKET}/jobs/{job_id}/{s}/" for s in STATES]
    assert all("robot" in r.prompt and "SnackBot" in r.prompt for r in recording_bedrock.requests)
    assert "talking" in recording_bedrock.requests[1].prompt
    tokens = [r.client_request_token for r in recording_bedrock.requests]
    assert len(set(tokens)) == 3 and all(len(t) <= 256 and t.replace("-", "").isalnum() for t in tokens)
    invocations = db.fetch_all("SELECT state, attempt, invocation_arn, status FROM video_invocations "
                               "WHERE job_id = %s ORDER BY started_at, state", (job_id,))
    assert sorted((i["state"], i["invocation_arn"], i["status"]) for i in invocations) == \
        sorted(zip(STATES, arns, ["in_progress"] * 3, strict=True))
    # and the request body Bedrock receives carries the image bytes, base64-encoded, as Luma's first keyframe
    from genjobs.adapters.bedrock import luma_ray_input
    body = luma_ray_input(recording_bedrock.requests[0])
    assert base64.b64decode(body["keyframes"]["frame0"]["source"]["data"]) == keyframe
    assert body["duration"] == "5s" and body["resolution"] == "720p" and body["aspect_ratio"] == "16:9"


def test_s3_events_complete_the_job_with_its_cost(db: Database, s3_store: S3MediaStore,
                                                  recording_bedrock: RecordingBedrock) -> None:
    # Given a job generating three videos
    clock = FrozenClock()
    persona, job_id = video_job(db, s3_store, clock)
    for state in STATES:
        recording_bedrock.expect_start(job_id, 1, state)
    run(db, recording_bedrock, s3_store, job_id, clock)

    # When the outputs arrive, out of order, one S3 event each (statement counted per event)
    outcomes = []
    for state in ["thinking", "idle", "talking"]:
        with record_statements() as recorder:
            outcomes.append(deliver(db, s3_store, job_id, state, clock))
        assert recorder.count == 1, recorder.statements

    # Then progress went 33 -> 66 -> 100, the last one completed the job: cost 3 x 5 s x $1.50 (720p), charged once
    assert [(o.outcome, o.progress) for o in outcomes] == [("recorded", 33), ("recorded", 66), ("completed", 100)]
    job = db.fetch_one("SELECT * FROM generation_jobs WHERE id = %s", (job_id,))
    assert job is not None
    assert job["status"] == "completed" and job["states_generated"] == ["thinking", "idle", "talking"]
    assert job["cost_usd"] == Decimal("22.5") and job["current_step"] == "completed"
    ledger = db.fetch_all("SELECT usage_key, amount_usd, quantity, unit_price_usd FROM usage_ledger "
                          "WHERE job_id = %s", (job_id,))
    assert ledger == [{"usage_key": f"job:{job_id}", "amount_usd": Decimal("22.5"), "quantity": Decimal("15.000"),
                       "unit_price_usd": Decimal("1.500000")}]
    video_states = db.fetch_value("SELECT video_states FROM personas WHERE id = %s", (persona,))
    assert video_states == {s: s3_store.url_for(video_output_key(job_id, s)) for s in STATES}
    assert db.fetch_value("SELECT count(*) FROM media_outputs WHERE job_id = %s AND kind = 'video' "
                          "AND duration_seconds = 5 AND size_bytes = 12", (job_id,)) == 3
    assert db.fetch_value("SELECT count(*) FROM video_invocations WHERE job_id = %s AND status = 'completed'",
                          (job_id,)) == 3
    # a video's file is recorded before its job moves on (no step change to fold it into): its own timeline row
    outputs = db.fetch_all("SELECT details FROM job_events WHERE job_id = %s AND event_type = 'output_generated' "
                           "ORDER BY id", (job_id,))
    assert [o["details"]["state"] for o in outputs] == ["thinking", "idle", "talking"]
    # and a duplicate after completion changes nothing
    late = deliver(db, s3_store, job_id, "idle", clock)
    assert late.outcome == "ignored" and late.job_status == "completed"
    assert db.fetch_value("SELECT count(*) FROM usage_ledger") == 2  # the variations job and this one


def test_ten_states_each_delivered_three_times_concurrently(database_url: str, db: Database,
                                                             s3_store: S3MediaStore) -> None:
    # Given a job generating ten videos (its invocations recorded as the worker would)
    clock = FrozenClock()
    states = [f"state_{i}" for i in range(10)]
    persona, job_id = video_job(db, s3_store, clock, states=states)
    db.execute("UPDATE generation_jobs SET status = 'processing', attempt = 1 WHERE id = %s", (job_id,))
    db.execute("UPDATE generation_jobs SET status = 'generating_videos' WHERE id = %s", (job_id,))
    for state in states:
        s3_store.put(video_output_key(job_id, state), b"mp4", "video/mp4")
    wide = make_database(database_url, pool_min_size=0, pool_max_size=30)
    deliveries = [state for state in states for _ in range(3)]
    barrier = threading.Barrier(len(deliveries))
    results: list[VideoRecorded] = []
    errors: list[BaseException] = []
    lock = threading.Lock()

    def on_event(state: str) -> None:
        barrier.wait()
        try:
            result = worker_videos.record_video_output(wide, s3_store, bucket=BUCKET,
                                                       key=video_output_key(job_id, state), size=3, clock=clock)
            with lock:
                results.append(result)
        except BaseException as exc:  # asserted empty below
            with lock:
                errors.append(exc)

    # When all 30 events are processed at once
    threads = [threading.Thread(target=on_event, args=(s,)) for s in deliveries]
    try:
        for t in threads:
            t.start()
        for t in threads:
            t.join()
    finally:
        wide.close()

    # Then every state is present once, progress is 100, the job completed once and was charged once
    assert errors == []
    outcomes = Counter(r.outcome for r in results)
    assert outcomes["completed"] == 1 and outcomes["recorded"] == 9
    assert outcomes["duplicate"] + outcomes["ignored"] == 20
    job = db.fetch_one("SELECT status, progress, states_generated, cost_usd FROM generation_jobs WHERE id = %s",
                       (job_id,))
    assert job is not None and job["status"] == "completed" and job["progress"] == 100
    assert sorted(job["states_generated"]) == sorted(states) and len(job["states_generated"]) == 10
    assert job["cost_usd"] == Decimal("75")  # 10 states x 5 s x $1.50
    assert db.fetch_value("SELECT count(*) FROM job_events WHERE job_id = %s AND event_type = 'status_changed' "
                          "AND status = 'completed'", (job_id,)) == 1
    assert db.fetch_value("SELECT count(*) FROM usage_ledger WHERE job_id = %s", (job_id,)) == 1
    assert db.fetch_value("SELECT count(*) FROM media_outputs WHERE job_id = %s", (job_id,)) == 10
    video_states = db.fetch_value("SELECT video_states FROM personas WHERE id = %s", (persona,))
    assert sorted(video_states) == sorted(states)


def test_events_for_unknown_canceled_or_foreign_outputs_are_dropped(db: Database, s3_store: S3MediaStore,
                                                                     recording_bedrock: RecordingBedrock) -> None:
    clock = FrozenClock()
    _, job_id = video_job(db, s3_store, clock, states=["idle"])
    recording_bedrock.expect_start(job_id, 1, "idle")
    run(db, recording_bedrock, s3_store, job_id, clock)

    # Given events that are not ours to record
    unknown = worker_videos.record_video_output(db, s3_store, bucket=BUCKET,
                                                key=video_output_key(UUID(int=7), "idle"), size=1, clock=clock)
    other_bucket = worker_videos.record_video_output(db, s3_store, bucket="elsewhere",
                                                     key=video_output_key(job_id, "idle"), size=1, clock=clock)
    not_video = worker_videos.record_video_output(db, s3_store, bucket=BUCKET,
                                                  key=f"jobs/{job_id}/idle/x/manifest.json", size=1, clock=clock)
    unasked = deliver(db, s3_store, job_id, "dancing", clock)
    jobs.cancel_job(db, "acme", job_id, clock=clock)
    after_cancel = deliver(db, s3_store, job_id, "idle", clock)

    # Then each is ignored with its reason, and nothing was recorded
    assert [r.outcome for r in (unknown, other_bucket, not_video, unasked, after_cancel)] == ["ignored"] * 5
    assert unknown.reason == "unknown job" and after_cancel.reason == "the job is canceled"
    assert unasked.reason == "the job did not ask for this state"
    row = db.fetch_one("SELECT status, states_generated FROM generation_jobs WHERE id = %s", (job_id,))
    assert row == {"status": "canceled", "states_generated": []}
    assert db.fetch_value("SELECT count(*) FROM media_outputs WHERE kind = 'video'") == 0


def test_cancel_while_starting_videos_stops_the_worker(db: Database, s3_store: S3MediaStore,
                                                       recording_bedrock: RecordingBedrock) -> None:
    # Given the job is canceled while its first invocation starts
    clock = FrozenClock()
    _, job_id = video_job(db, s3_store, clock)
    recording_bedrock.expect_start(job_id, 1, "idle")

    class CancelingProvider:
        def start_video(self, request: VideoRequest) -> str:
            jobs.cancel_job(db, "acme", job_id, clock=clock)
            return recording_bedrock.start_video(request)

    # When the worker runs
    outcome = run(db, CancelingProvider(), s3_store, job_id, clock)

    # Then it stops at its next write: one invocation started, none more, the job stays canceled
    assert outcome.stale and len(recording_bedrock.requests) == 1
    assert db.fetch_value("SELECT status FROM generation_jobs WHERE id = %s", (job_id,)) == "canceled"


def test_throttled_start_is_retried_and_the_retry_skips_generated_states(
        db: Database, s3_store: S3MediaStore, recording_bedrock: RecordingBedrock) -> None:
    # Given the second invocation is throttled
    clock = FrozenClock()
    _, job_id = video_job(db, s3_store, clock)
    recording_bedrock.expect_start(job_id, 1, "idle")
    recording_bedrock.stubber.add_client_error("start_async_invoke", service_error_code="ThrottlingException",
                                     service_message="Too many requests", http_status_code=429)
    first = run(db, recording_bedrock, s3_store, job_id, clock)
    row = db.fetch_one("SELECT status, retry_count, error_code FROM generation_jobs WHERE id = %s", (job_id,))
    assert first.error_code == "PROVIDER_THROTTLED"
    assert row == {"status": "queued", "retry_count": 1, "error_code": "PROVIDER_THROTTLED"}
    assert db.fetch_value("SELECT status FROM video_invocations WHERE job_id = %s AND state = 'talking'",
                          (job_id,)) == "failed"

    # When the first state's video nevertheless arrives while queued it is dropped; then the retry runs
    assert deliver(db, s3_store, job_id, "idle", clock).outcome == "ignored"
    db.execute("UPDATE generation_jobs SET states_generated = '{idle}' WHERE id = %s", (job_id,))
    clock.advance(timedelta(minutes=1))
    recording_bedrock.expect_start(job_id, 2, "talking")
    recording_bedrock.expect_start(job_id, 2, "thinking")
    second = run(db, recording_bedrock, s3_store, job_id, clock)

    # Then attempt 2 starts only the states still missing
    assert second.status == "generating_videos" and second.attempt == 2
    recording_bedrock.stubber.assert_no_pending_responses()
    assert [r.output_s3_uri.split("/")[-2] for r in recording_bedrock.requests] == [
        "idle", "talking", "talking", "thinking"]


def test_persona_without_a_stored_approved_image_fails_the_job(db: Database, s3_store: S3MediaStore,
                                                               recording_bedrock: RecordingBedrock) -> None:
    clock = FrozenClock()
    _, job_id = video_job(db, s3_store, clock)
    db.execute("UPDATE character_variations SET media_output_id = NULL")
    outcome = run(db, recording_bedrock, s3_store, job_id, clock)
    assert outcome.status == "failed" and outcome.error_code == "NO_APPROVED_IMAGE"
    assert recording_bedrock.requests == []


def test_client_request_tokens_are_valid_and_distinct() -> None:
    job_id = UUID("0b7c2a4e-5d0e-4a57-9a3c-1f2e3d4c5b6a")
    tokens = {worker_videos.client_request_token(job_id, a, s) for a in (1, 2) for s in ("idle", "idle_", "x" * 40)}
    assert len(tokens) == 6
    assert all(1 <= len(t) <= 256 and t[0].isalnum() and t[-1].isalnum() and set(t) <= set(
        "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-") for t in tokens)


def test_a_second_output_for_a_state_does_not_replace_the_personas_video(
        db: Database, s3_store: S3MediaStore) -> None:
    # Given a job generating two videos whose "idle" state was delivered
    clock = FrozenClock()
    persona, job_id = video_job(db, s3_store, clock, states=["idle", "talking"])
    db.execute("UPDATE generation_jobs SET status = 'processing', attempt = 1 WHERE id = %s", (job_id,))
    db.execute("UPDATE generation_jobs SET status = 'generating_videos' WHERE id = %s", (job_id,))
    first = deliver(db, s3_store, job_id, "idle", clock)
    shown = db.fetch_value("SELECT video_states ->> 'idle' FROM personas WHERE id = %s", (persona,))

    # When a second output for the same state arrives (another invocation's file: a late or retried one)
    key = video_output_key(job_id, "idle", invocation_id="inv0002")
    s3_store.put(key, b"\x00\x00\x00\x18ftypisom", "video/mp4")
    second = worker_videos.record_video_output(db, s3_store, bucket=BUCKET, key=key, size=12, clock=clock)

    # Then it is recorded as a file, but the persona still shows the first video and the state counts once
    assert first.outcome == "recorded" and second.outcome == "recorded"
    assert shown == s3_store.url_for(video_output_key(job_id, "idle"))
    assert db.fetch_value("SELECT video_states ->> 'idle' FROM personas WHERE id = %s", (persona,)) == shown
    assert db.fetch_value("SELECT states_generated FROM generation_jobs WHERE id = %s", (job_id,)) == ["idle"]
