"""Progress commands (direct invoke) and S3 completion events, through the progress handler."""

from __future__ import annotations

from decimal import Decimal
from typing import Any
from uuid import UUID

import pytest
from genjobs.db import Database, record_statements

import functions.progress.app as progress_app
from local_runner.media import LocalMediaStore
from local_runner.s3_events import s3_object_created_event
from tests.support.events import invoke, load_event
from tests.support.fakes import FrozenClock
from tests.support.scenarios import approved_persona, new_persona, start_job, video_output_key

BUCKET = "genjobs-media-local"
SAMPLE_JOB = "0b7c2a4e-5d0e-4a57-9a3c-1f2e3d4c5b6a"


def command(action: str, job_id: Any, **fields: Any) -> dict[str, Any]:
    """The sample event for the action, pointed at this job (the fixtures double as documentation)."""
    event = load_event(f"progress/{action}.json")
    event["job_id"] = str(job_id)
    event.update(fields)
    return {k: v for k, v in event.items() if v is not None}


def send(event: dict[str, Any]) -> tuple[dict[str, Any], int]:
    with record_statements() as recorder:
        answer = invoke(progress_app, event)
    return answer, recorder.count


def running_job(db: Database, *, job_type: str = "character_variations", states: list[str] | None = None,
                store: LocalMediaStore | None = None) -> UUID:
    clock = FrozenClock()
    if job_type == "state_videos":
        assert store is not None
        persona, _ = approved_persona(db, "acme", store, clock=clock)
    else:
        persona = new_persona(db, "acme")
    job_id = start_job(db, "acme", persona, clock=clock, job_type=job_type, states=states)
    db.execute("UPDATE generation_jobs SET status = 'processing', attempt = 1 WHERE id = %s", (job_id,))
    return job_id


def test_update_step_and_progress_are_one_statement_each(db: Database) -> None:
    # Given a running job
    job_id = running_job(db)

    # When a trusted caller reports a step, then progress (and a stale, lower progress)
    step, step_statements = send(command("update_current_step", job_id))
    progress, progress_statements = send(command("update_progress", job_id))
    lower, _ = send(command("update_progress", job_id, progress=10, step=None))

    # Then each took one statement; progress never moves backwards
    assert (step_statements, progress_statements) == (1, 1)
    assert step["ok"] and step["result"]["current_step"] == "rendering_keyframe" and step["result"]["changed"]
    assert progress["result"]["progress"] == 40 and progress["result"]["current_step"] == "rendering"
    assert lower["ok"] and lower["result"]["progress"] == 40 and lower["result"]["changed"] is False
    events = db.fetch_all("SELECT current_step FROM job_events WHERE job_id = %s AND event_type = 'step_changed' "
                          "ORDER BY id", (job_id,))
    assert [e["current_step"] for e in events] == ["rendering_keyframe", "rendering"]


def test_add_generated_state_twice_appends_once(db: Database, handler_store: LocalMediaStore) -> None:
    # Given a running state-videos job for two states
    job_id = running_job(db, job_type="state_videos", states=["idle", "talking"], store=handler_store)

    # When the same state is added twice (with its video URL), then an unrequested one
    first, statements = send(command("add_generated_state", job_id))
    second, _ = send(command("add_generated_state", job_id))
    unasked, _ = send(command("add_generated_state", job_id, state="dancing"))

    # Then it was appended once, progress is 50, the persona has the URL, and the unrequested state is refused
    assert statements == 1
    assert first["result"]["states_generated"] == ["idle"] and first["result"]["progress"] == 50
    assert first["result"]["changed"] is True and second["result"]["changed"] is False
    assert second["result"]["states_generated"] == ["idle"]
    assert unasked["ok"] is False and unasked["error"]["code"] == "VALIDATION_ERROR"
    url = load_event("progress/add_generated_state.json")["video_url"]
    assert db.fetch_value("SELECT p.video_states FROM personas p JOIN generation_jobs j ON j.persona_id = p.id "
                          "WHERE j.id = %s", (job_id,)) == {"idle": url}


def test_mark_completed_charges_once_and_is_idempotent(db: Database) -> None:
    # Given a running variations job with two recorded variations
    job_id = running_job(db)
    db.execute("INSERT INTO character_variations (job_id, persona_id, merchant_id, variation_index, seed, image_url) "
               "SELECT id, persona_id, merchant_id, i, i, 'http://m/' || i "
               "FROM generation_jobs, generate_series(0, 1) i WHERE id = %s", (job_id,))

    # When it is marked completed twice
    first, statements = send(command("mark_completed", job_id))
    again, _ = send(command("mark_completed", job_id))

    # Then one statement completed it with the cost of two images, charged once; the repeat changed nothing
    assert statements == 1 and first["ok"], first
    assert first["result"]["status"] == "completed" and first["result"]["progress"] == 100
    assert again["ok"] and again["result"]["changed"] is False
    assert again["result"]["version"] == first["result"]["version"]
    row = db.fetch_one("SELECT cost_usd, variation_urls FROM generation_jobs WHERE id = %s", (job_id,))
    assert row == {"cost_usd": Decimal("0.08"), "variation_urls": ["http://m/0", "http://m/1"]}
    assert db.fetch_value("SELECT count(*) FROM usage_ledger WHERE job_id = %s", (job_id,)) == 1
    assert db.fetch_value("SELECT p.status FROM personas p JOIN generation_jobs j ON j.persona_id = p.id "
                          "WHERE j.id = %s", (job_id,)) == "pending_approval"


def test_transition_violations_are_409_with_the_current_status(db: Database) -> None:
    # Given a queued job, and a completed one
    queued = start_job(db, "acme", new_persona(db, "acme"), clock=FrozenClock(), job_type="character_variations")
    completed = running_job(db)
    send(command("mark_completed", completed, cost_usd="0.5"))

    # When they are marked with statuses the transition table does not allow, or sent progress
    answers = [send(command("mark_completed", queued, attempt=None))[0],
               send(command("mark_failed", completed))[0],
               send(command("update_progress", completed))[0]]

    # Then each is a 409 naming the job's current status, and nothing changed
    assert [a["error"]["code"] for a in answers] == ["ILLEGAL_TRANSITION", "ILLEGAL_TRANSITION", "CONFLICT"]
    assert [a["error"]["details"]["current_status"] for a in answers] == ["queued", "completed", "completed"]
    assert db.fetch_value("SELECT status FROM generation_jobs WHERE id = %s", (queued,)) == "queued"
    assert db.fetch_value("SELECT cost_usd FROM generation_jobs WHERE id = %s", (completed,)) == Decimal("0.5")


def test_mark_failed_and_attempt_fencing(db: Database) -> None:
    job_id = running_job(db)
    stale, _ = send(command("update_current_step", job_id, attempt=2))
    assert stale["error"]["code"] == "STALE_ATTEMPT" and stale["error"]["details"]["current_attempt"] == 1
    failed, statements = send(command("mark_failed", job_id))
    again, _ = send(command("mark_failed", job_id))
    assert statements == 1 and failed["result"]["status"] == "failed" and again["result"]["changed"] is False
    row = db.fetch_one("SELECT error_code, error_message FROM generation_jobs WHERE id = %s", (job_id,))
    assert row == {"error_code": "PROVIDER_FAILED", "error_message": "The model could not render the requested video."}


def test_get_job_progress_and_merchant_scope(db: Database) -> None:
    job_id = running_job(db)
    answer, statements = send(command("get_job_progress", job_id))
    assert statements == 1 and answer["result"]["status"] == "processing"
    assert answer["result"]["merchant_id"] == "acme"
    without_merchant, _ = send(command("get_job_progress", job_id, merchant_id=None))
    assert without_merchant["ok"]
    for action in ("get_job_progress", "update_current_step", "mark_completed", "mark_failed", "add_generated_state"):
        foreign, _ = send(command(action, job_id, merchant_id="globex"))
        assert foreign["error"]["code"] == "NOT_FOUND", action
    assert db.fetch_value("SELECT status FROM generation_jobs WHERE id = %s", (job_id,)) == "processing"


@pytest.mark.parametrize("event", [
    {"action": "update_progress", "job_id": SAMPLE_JOB, "progress": 101},
    {"action": "add_generated_state", "job_id": SAMPLE_JOB, "state": "Idle"},
    {"action": "mark_failed", "job_id": SAMPLE_JOB, "error_code": "x", "error_message": "m"},
    {"action": "update_current_step", "job_id": "not-a-uuid", "step": "s"},
    {"action": "update_current_step", "job_id": SAMPLE_JOB, "step": "s", "column": "x"},
    {"action": "drop_table"},
])
def test_invalid_commands_are_refused_without_a_statement(db: Database, event: dict[str, Any]) -> None:
    answer, statements = send(event)
    assert answer["ok"] is False and answer["error"]["code"] == "VALIDATION_ERROR" and statements == 0


def test_a_step_that_looks_like_sql_is_only_ever_data(db: Database) -> None:
    # Given a running job
    job_id = running_job(db)

    # When a caller reports a step written like a SET clause
    answer, _ = send(command("update_current_step", job_id, step="x', status = 'completed' --"))

    # Then the step is stored as it was sent, and nothing else changed
    assert answer["ok"] and answer["result"]["current_step"] == "x', status = 'completed' --"
    assert db.fetch_value("SELECT status FROM generation_jobs WHERE id = %s", (job_id,)) == "processing"


def test_s3_event_completes_the_job_in_one_statement(db: Database, handler_store: LocalMediaStore) -> None:
    # Given a state-videos job generating one video
    job_id = running_job(db, job_type="state_videos", states=["idle"], store=handler_store)
    db.execute("UPDATE generation_jobs SET status = 'generating_videos' WHERE id = %s", (job_id,))
    key = video_output_key(job_id, "idle", "q7r8s9t0u1v2")
    event = load_event("progress/s3_object_created.json")
    event["Records"][0]["s3"]["object"]["key"] = key

    # When S3 reports the output, twice
    first, statements = send(event)
    second, _ = send(event)

    # Then one statement recorded it and completed the job; the duplicate was dropped
    assert statements == 1
    assert first["records"][0]["outcome"] == "completed" and first["records"][0]["charged"] is True
    assert second["records"][0]["outcome"] == "ignored"
    assert db.fetch_value("SELECT status FROM generation_jobs WHERE id = %s", (job_id,)) == "completed"
    assert db.fetch_value("SELECT p.video_states ->> 'idle' FROM personas p JOIN generation_jobs j "
                          "ON j.persona_id = p.id WHERE j.id = %s", (job_id,)) == handler_store.url_for(key)


def test_s3_events_that_are_not_ours_do_not_raise(db: Database, handler_store: LocalMediaStore) -> None:
    keys = ["jobs/not-a-job/idle/x/output.mp4", f"jobs/{UUID(int=9)}/idle/x/output.mp4", "random/file.txt",
            "jobs/0b7c2a4e-5d0e-4a57-9a3c-1f2e3d4c5b6a/idle/x%2By/output.mp4"]
    answer = invoke(progress_app, {"Records": [s3_object_created_event(BUCKET, k, 1)["Records"][0] for k in keys]})
    assert [r["outcome"] for r in answer["records"]] == ["ignored"] * 4
    assert answer["records"][1]["reason"] == "unknown job"
