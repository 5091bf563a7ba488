"""Job reads (with long-poll), job lists (keyset), the timeline and cancel, through the progress handler."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import threading
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any
from uuid import UUID

import psycopg
import pytest
from genjobs import dependencies
from genjobs.data import jobs as job_data
from genjobs.data import maintenance as maintenance_data
from genjobs.db import Database, record_statements
from genjobs.ports import CursorKeys
from genjobs.settings import Settings

import functions.progress.app as progress_app
from tests.support.events import http_event, invoke, json_body, load_event
from tests.support.fakes import FrozenClock
from tests.support.merchants import MerchantClient
from tests.support.scenarios import new_persona, start_job

TICK_MS = 20


@pytest.fixture
def fast_ticks(db: Database) -> Iterator[float]:
    with dependencies.overridden(settings=Settings(long_poll_tick_ms=TICK_MS)):
        yield TICK_MS / 1000


class Sleeps:
    """Stands in for the long-poll's pause: counts the pauses, runs `on_first` during the first one."""

    def __init__(self, on_first: Any = None) -> None:
        self.count = 0
        self.on_first = on_first

    def __call__(self, seconds: float) -> None:
        self.count += 1
        if self.count == 1 and self.on_first is not None:
            self.on_first()
        time.sleep(seconds)


def get_job(client: MerchantClient, job_id: Any, *, query: dict[str, str] | None = None,
            headers: dict[str, str] | None = None) -> tuple[int, Any, dict[str, str]]:
    return client.call("progress", "GET", f"/jobs/{job_id}", route="/jobs/{job_id}",
                       path_parameters={"job_id": str(job_id)}, query=query, headers=headers)


def list_jobs(client: MerchantClient, **query: str) -> tuple[int, Any, dict[str, str]]:
    return client.call("progress", "GET", "/jobs", query=query or None)


def cancel(client: MerchantClient, job_id: Any) -> tuple[int, Any, dict[str, str]]:
    return client.call("progress", "POST", f"/jobs/{job_id}/cancel", route="/jobs/{job_id}/cancel",
                       path_parameters={"job_id": str(job_id)})


def timeline(client: MerchantClient, job_id: Any, **query: str) -> tuple[int, Any, dict[str, str]]:
    return client.call("progress", "GET", f"/jobs/{job_id}/events", route="/jobs/{job_id}/events",
                       path_parameters={"job_id": str(job_id)}, query=query or None)


def queued_job(db: Database, merchant: str = "acme") -> UUID:
    return start_job(db, merchant, new_persona(db, merchant), clock=FrozenClock(), job_type="character_variations")


# -- GET /jobs/{job_id} ---------------------------------------------------------------------------------


def test_get_job_is_one_statement_with_every_field_and_an_etag(acme: MerchantClient, db: Database) -> None:
    # Given a queued job
    job_id = queued_job(db)

    # When it is read
    with record_statements() as recorder:
        status, job, headers = get_job(acme, job_id)

    # Then one statement answered every field of the contract, and the ETag is the version
    assert recorder.count == 1, recorder.statements
    assert status == 200 and job["id"] == str(job_id)
    for field in ("status", "current_step", "progress", "states_generated", "total_states", "variation_urls",
                  "cost_usd", "error", "retry_count", "created_at", "started_at", "completed_at", "updated_at",
                  "version"):
        assert field in job, field
    assert (job["status"], job["progress"], job["version"]) == ("queued", 0, 1)
    assert headers["ETag"] == '"1"' and headers["Cache-Control"] == "no-store"


def test_the_sample_event_reads_a_job(acme: MerchantClient, db: Database) -> None:
    event = load_event("progress/get_job.json")
    job_id = queued_job(db)
    event["pathParameters"]["job_id"] = str(job_id)
    event["rawPath"] = event["requestContext"]["http"]["path"] = f"/jobs/{job_id}"
    response = invoke(progress_app, event)
    assert response["statusCode"] == 200 and json_body(response)["id"] == str(job_id)


def test_long_poll_returns_within_one_tick_of_a_change_from_another_connection(
        acme: MerchantClient, db: Database, database_url: str, fast_ticks: float,
        monkeypatch: pytest.MonkeyPatch) -> None:
    # Given a waiting client (wait=20) and a job that another connection changes during the first tick
    job_id = queued_job(db)
    changed = threading.Event()

    def change_elsewhere() -> None:
        def update() -> None:
            with psycopg.connect(database_url, autocommit=True) as other:
                other.execute("UPDATE generation_jobs SET status = 'processing', current_step = 'rendering' "
                              "WHERE id = %s", (job_id,))
            changed.set()
        worker = threading.Thread(target=update)
        worker.start()
        assert changed.wait(10)
        worker.join()

    sleeps = Sleeps(on_first=change_elsewhere)
    monkeypatch.setattr(progress_app, "_sleep", sleeps)

    # When the client long-polls
    started = time.monotonic()
    with record_statements() as recorder:
        status, job, headers = get_job(acme, job_id, query={"wait": "20"}, headers={"If-None-Match": '"1"'})
    elapsed = time.monotonic() - started

    # Then the answer came after the tick in which the change happened: one pause, two single-row reads
    assert status == 200 and job["status"] == "processing" and job["current_step"] == "rendering"
    assert headers["ETag"] == '"2"'
    assert sleeps.count == 1 and recorder.count == 2, recorder.statements
    assert elapsed < 5, "answered long before the 20 s wait ran out"


def test_long_poll_times_out_with_the_unchanged_job(acme: MerchantClient, db: Database, fast_ticks: float,
                                                    monkeypatch: pytest.MonkeyPatch) -> None:
    # Given a job nobody changes
    job_id = queued_job(db)
    sleeps = Sleeps()
    monkeypatch.setattr(progress_app, "_sleep", sleeps)

    # When the client waits one second for a change
    started = time.monotonic()
    with record_statements() as recorder:
        status, job, headers = get_job(acme, job_id, query={"wait": "1"})
    elapsed = time.monotonic() - started

    # Then after the second it gets the unchanged job, having paid one single-row read per tick
    assert status == 200 and job["version"] == 1 and headers["ETag"] == '"1"'
    assert elapsed >= 0.95
    assert sleeps.count >= 10 and recorder.count == sleeps.count + 1
    assert all("FROM generation_jobs j WHERE j.id = " in s for s in recorder.statements)


def test_long_poll_answers_at_once_when_the_version_already_differs_or_the_job_is_finished(
        acme: MerchantClient, db: Database, monkeypatch: pytest.MonkeyPatch) -> None:
    job_id = queued_job(db)
    sleeps = Sleeps()
    monkeypatch.setattr(progress_app, "_sleep", sleeps)
    db.execute("UPDATE generation_jobs SET current_step = 'x' WHERE id = %s", (job_id,))

    # the client knows version 1, the job is at 2: no wait
    with record_statements() as recorder:
        status, job, _ = get_job(acme, job_id, query={"wait": "20"}, headers={"If-None-Match": 'W/"1"'})
    assert status == 200 and job["version"] == 2 and recorder.count == 1 and sleeps.count == 0

    # a finished job does not change any more: no wait either
    db.execute("UPDATE generation_jobs SET status = 'canceled' WHERE id = %s", (job_id,))
    status, job, _ = get_job(acme, job_id, query={"wait": "20"}, headers={"If-None-Match": '"3"'})
    assert status == 200 and job["status"] == "canceled" and sleeps.count == 0


def test_long_poll_ends_before_the_lambda_deadline(acme: MerchantClient, db: Database, fast_ticks: float) -> None:
    # Given a Lambda invocation with 1.7 s left and a client asking to wait 20 s for an unchanged job
    job_id = queued_job(db)
    event = http_event("GET", f"/jobs/{job_id}", route="/jobs/{job_id}", path_parameters={"job_id": str(job_id)},
                       query={"wait": "20"}, merchant_id="acme")

    # When the handler runs
    started = time.monotonic()
    response = invoke(progress_app, event, timeout_seconds=1.7)

    # Then it answers the unchanged job well before the deadline (1.5 s are kept for the answer)
    assert response["statusCode"] == 200 and json_body(response)["version"] == 1
    assert time.monotonic() - started < 1.5


@pytest.mark.parametrize("wait", ["-1", "21", "abc", "1.5"])
def test_wait_out_of_range_is_422(acme: MerchantClient, db: Database, wait: str) -> None:
    job_id = queued_job(db)
    status, error, _ = get_job(acme, job_id, query={"wait": wait})
    assert status == 422 and error["error"]["code"] == "VALIDATION_ERROR"


def test_unknown_and_malformed_job_ids(acme: MerchantClient, db: Database) -> None:
    assert get_job(acme, UUID(int=5))[0] == 404
    status, error, _ = get_job(acme, "not-a-uuid")
    assert status == 422 and error["error"]["code"] == "VALIDATION_ERROR"


# -- GET /jobs ------------------------------------------------------------------------------------------

BASE_TIME = datetime(2026, 11, 20, 12, 0, tzinfo=UTC)


def insert_jobs(db: Database, merchant: str, created: list[datetime], *, job_type: str = "character_variations",
                status: str = "completed") -> list[UUID]:
    persona = new_persona(db, merchant)
    ids = []
    for at in created:
        ids.append(db.fetch_value(
            "INSERT INTO generation_jobs (merchant_id, persona_id, job_type, variation_count, states_requested, "
            "status, completed_at, error_code, created_at) VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s) RETURNING id",
            (merchant, persona, job_type, 3 if job_type == "character_variations" else None,
             ["idle"] if job_type == "state_videos" else [], status, at, "E" if status == "failed" else None, at)))
    return ids


def expected_order(db: Database, merchant: str) -> list[str]:
    return [str(r["id"]) for r in db.fetch_all(
        "SELECT id FROM generation_jobs WHERE merchant_id = %s ORDER BY created_at DESC, id DESC", (merchant,))]


def test_keyset_pages_have_no_duplicates_or_gaps_while_jobs_are_inserted(acme: MerchantClient,
                                                                        db: Database) -> None:
    # Given 25 jobs of acme (timestamps shared in groups of three, so ties are broken by id) and some of globex
    created = [BASE_TIME - timedelta(minutes=i // 3) for i in range(25)]
    insert_jobs(db, "acme", created)
    insert_jobs(db, "globex", created[:5])
    before = expected_order(db, "acme")

    # When the client pages with limit 7 while newer jobs and one older job are inserted between pages
    seen: list[str] = []
    cursor: str | None = None
    pages = 0
    while True:
        query = {"limit": "7", **({"cursor": cursor} if cursor else {})}
        with record_statements() as recorder:
            status, page, _ = list_jobs(acme, **query)
        assert status == 200 and recorder.count == 1, recorder.statements
        seen += [item["id"] for item in page["items"]]
        pages += 1
        if pages == 1:
            insert_jobs(db, "acme", [BASE_TIME + timedelta(minutes=5)] * 3)          # ahead of the cursor
            older = insert_jobs(db, "acme", [BASE_TIME - timedelta(days=1)])[0]      # behind it
        cursor = page["next_cursor"]
        if cursor is None:
            break

    # Then every job that was behind the cursor appears exactly once, in order, and the new ones do not shift pages
    assert len(seen) == len(set(seen)) == 26 and pages == 4
    assert seen == [*before, str(older)]


def test_list_filters_and_page_size(acme: MerchantClient, db: Database) -> None:
    insert_jobs(db, "acme", [BASE_TIME - timedelta(minutes=i) for i in range(3)], job_type="state_videos")
    failed = insert_jobs(db, "acme", [BASE_TIME - timedelta(minutes=10)], status="failed")
    persona = db.fetch_value("SELECT persona_id FROM generation_jobs WHERE id = %s", (failed[0],))

    status, page, _ = list_jobs(acme, job_type="state_videos")
    assert status == 200 and len(page["items"]) == 3 and page["next_cursor"] is None
    assert {i["job_type"] for i in page["items"]} == {"state_videos"}
    assert [i["id"] for i in list_jobs(acme, status="failed")[1]["items"]] == [str(failed[0])]
    assert [i["id"] for i in list_jobs(acme, persona_id=str(persona))[1]["items"]] == [str(failed[0])]
    assert list_jobs(acme, status="queued")[1] == {"items": [], "next_cursor": None}
    status, page, _ = list_jobs(acme, limit="2", job_type="state_videos")
    assert len(page["items"]) == 2 and page["next_cursor"]
    for bad in ({"limit": "0"}, {"limit": "101"}, {"status": "done"}, {"job_type": "x"}, {"persona_id": "x"}):
        status, error, _ = list_jobs(acme, **bad)
        assert status == 422 and error["error"]["code"] == "VALIDATION_ERROR", bad


def test_tampered_cursors_are_400(acme: MerchantClient, db: Database) -> None:
    # Given a genuine cursor
    insert_jobs(db, "acme", [BASE_TIME - timedelta(minutes=i) for i in range(3)])
    cursor = list_jobs(acme, limit="1")[1]["next_cursor"]
    raw = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4))
    payload, tag = raw[:-12], raw[-12:]
    document = json.loads(payload)
    document["t"] = "2000-01-01T00:00:00+00:00"
    forged = base64.urlsafe_b64encode(json.dumps(document).encode() + tag).decode().rstrip("=")
    flipped = cursor[:5] + ("A" if cursor[5] != "A" else "B") + cursor[6:]
    tampered = ["garbage", "!!!!", "", "A" * 2000, base64.urlsafe_b64encode(b"{}" + b"x" * 12).decode(),
                forged, flipped, cursor[:-2]]

    # When each tampered cursor is used, or the genuine one with other filters
    answers = [list_jobs(acme, cursor=c) for c in tampered] + [list_jobs(acme, cursor=cursor, status="failed")]

    # Then each is a 400 BAD_REQUEST, never a 500
    assert [(s, e["error"]["code"]) for s, e, _ in answers] == [(400, "BAD_REQUEST")] * (len(tampered) + 1)
    assert list_jobs(acme, cursor=cursor)[0] == 200


def test_a_cursor_is_bound_to_its_merchant_and_keyed_with_the_configured_secret(
        acme: MerchantClient, globex: MerchantClient, db: Database) -> None:
    # Given a genuine cursor of acme's list, and one forged with the key that used to be a constant in the source
    insert_jobs(db, "acme", [BASE_TIME - timedelta(minutes=i) for i in range(3)])
    insert_jobs(db, "globex", [BASE_TIME - timedelta(minutes=i) for i in range(3)])
    cursor = list_jobs(acme, limit="1")[1]["next_cursor"]
    payload = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4))[:-12]
    old_tag = hmac.new(b"genjobs-job-list-cursor-v1", payload, hashlib.sha256).digest()[:12]
    forged = base64.urlsafe_b64encode(payload + old_tag).decode().rstrip("=")

    # When globex pages with acme's cursor, and acme with the forged one
    foreign = list_jobs(globex, limit="1", cursor=cursor)
    forgery = list_jobs(acme, limit="1", cursor=forged)

    # Then both are 400 BAD_REQUEST (as documented), and acme's own cursor still pages acme's list
    assert (foreign[0], foreign[1]["error"]["code"]) == (400, "BAD_REQUEST")
    assert (forgery[0], forgery[1]["error"]["code"]) == (400, "BAD_REQUEST")
    assert list_jobs(acme, limit="1", cursor=cursor)[0] == 200


def test_cursor_keys_rotate_and_the_previous_key_still_verifies(acme: MerchantClient, db: Database) -> None:
    # Given a cursor signed with the key configured now
    insert_jobs(db, "acme", [BASE_TIME - timedelta(minutes=i) for i in range(3)])
    old = dependencies.get().cursor_keys()
    cursor = list_jobs(acme, limit="1")[1]["next_cursor"]
    new_key = b"rotated-cursor-key-fedcba9876543210"

    # When the key rotates: the new key signs and the previous one still verifies
    rotated = CursorKeys((new_key, old.signing))
    with dependencies.overridden(cursor_keys=lambda: rotated):
        status, page, _ = list_jobs(acme, limit="1", cursor=cursor)
        # Then the old cursor pages on, and the next cursor is signed with the new key
        assert status == 200 and page["next_cursor"] is not None
        next_cursor = page["next_cursor"]
    with dependencies.overridden(cursor_keys=lambda: CursorKeys((new_key,))):
        assert list_jobs(acme, limit="1", cursor=next_cursor)[0] == 200
        # And once the previous key is gone, cursors it signed are refused
        assert list_jobs(acme, limit="1", cursor=cursor)[0] == 400


# -- timeline -------------------------------------------------------------------------------------------


def test_timeline_lists_every_change_in_order_and_pages(acme: MerchantClient, db: Database) -> None:
    job_id = queued_job(db)
    db.execute("UPDATE generation_jobs SET status = 'processing', current_step = 'rendering' WHERE id = %s",
               (job_id,))
    db.execute("UPDATE generation_jobs SET current_step = 'uploading', progress = 50 WHERE id = %s", (job_id,))
    with record_statements() as recorder:
        status, body, _ = timeline(acme, job_id)
    assert status == 200 and recorder.count == 1
    assert [(e["event_type"], e["status"], e["current_step"]) for e in body["items"]] == [
        ("created", "queued", "queued"), ("status_changed", "processing", "rendering"),
        ("step_changed", "processing", "uploading")]
    assert body["next_after"] is None
    status, first, _ = timeline(acme, job_id, limit="2")
    status, rest, _ = timeline(acme, job_id, after=str(first["next_after"]))
    assert [e["id"] for e in first["items"] + rest["items"]] == [e["id"] for e in body["items"]]


def test_timeline_of_an_archived_job_comes_from_its_archive(acme: MerchantClient, db: Database) -> None:
    # Given a completed job whose timeline the retention sweep folded into job_archives
    job_id = queued_job(db)
    db.execute("UPDATE generation_jobs SET status = 'processing' WHERE id = %s", (job_id,))
    db.execute("UPDATE generation_jobs SET status = 'completed' WHERE id = %s", (job_id,))
    status, live, _ = timeline(acme, job_id)
    archived = maintenance_data.archive_completed_jobs(db, before=datetime.now(UTC) + timedelta(days=1),
                                                       now=datetime.now(UTC), batch=10)
    assert archived == 1 and db.fetch_value("SELECT count(*) FROM job_events WHERE job_id = %s", (job_id,)) == 0

    # When the timeline is read
    status, body, _ = timeline(acme, job_id)

    # Then it is the same timeline as before archiving
    assert status == 200 and body["items"] == live["items"] and len(body["items"]) == 3


# -- cancel ---------------------------------------------------------------------------------------------


def test_cancel_a_queued_job_and_its_new_persona_goes_back_to_draft(acme: MerchantClient, db: Database) -> None:
    # Given a queued first variations job (its persona is generating)
    job_id = queued_job(db)
    assert db.fetch_value("SELECT p.status FROM personas p JOIN generation_jobs j ON j.persona_id = p.id "
                          "WHERE j.id = %s", (job_id,)) == "generating"

    # When the merchant cancels it
    with record_statements() as recorder:
        status, job, _ = cancel(acme, job_id)

    # Then it is canceled in one statement, and the persona is a draft again
    assert recorder.count == 1
    assert status == 200 and job["status"] == "canceled" and job["completed_at"] is not None
    assert db.fetch_value("SELECT p.status FROM personas p JOIN generation_jobs j ON j.persona_id = p.id "
                          "WHERE j.id = %s", (job_id,)) == "draft"


def test_cancel_a_running_job_refuses_the_workers_later_writes(acme: MerchantClient, db: Database) -> None:
    # Given a job a worker claimed
    job_id = queued_job(db)
    claim = job_data.claim_job(db, job_id, datetime.now(UTC), timedelta(minutes=5))
    assert claim is not None

    # When it is canceled and the worker then records an image
    status, job, _ = cancel(acme, job_id)
    recorded = job_data.record_variation(
        db, job_id=job_id, attempt=claim.attempt, index=0, seed=1, bucket="b", key="k", url="u",
        content_type="image/png", size_bytes=1, width=1, height=1, progress=33, step="late",
        lease_until=datetime.now(UTC), prompt="p")

    # Then the cancel answered the canceled job and the worker's write changed nothing
    assert status == 200 and job["status"] == "canceled" and recorded is False
    assert db.fetch_value("SELECT count(*) FROM media_outputs") == 0


@pytest.mark.parametrize("final", ["completed", "failed", "canceled"])
def test_cancel_a_finished_job_is_409_with_its_status(acme: MerchantClient, db: Database, final: str) -> None:
    job_id = queued_job(db)
    db.execute("UPDATE generation_jobs SET status = 'processing' WHERE id = %s", (job_id,))
    db.execute("UPDATE generation_jobs SET status = %s, error_code = 'E' WHERE id = %s", (final, job_id))
    status, error, _ = cancel(acme, job_id)
    assert status == 409 and error["error"]["code"] == "ILLEGAL_TRANSITION"
    assert error["error"]["details"]["current_status"] == final
    assert db.fetch_value("SELECT status FROM generation_jobs WHERE id = %s", (job_id,)) == final


# -- another merchant -----------------------------------------------------------------------------------


def test_another_merchants_job_is_404_on_every_progress_endpoint(acme: MerchantClient, globex: MerchantClient,
                                                                 db: Database, fast_ticks: float) -> None:
    job_id = queued_job(db, "acme")
    persona = db.fetch_value("SELECT persona_id FROM generation_jobs WHERE id = %s", (job_id,))
    answers = [get_job(globex, job_id), get_job(globex, job_id, query={"wait": "5"}), timeline(globex, job_id),
               cancel(globex, job_id), list_jobs(globex, persona_id=str(persona))]
    assert [(s, e["error"]["code"]) for s, e, _ in answers] == [(404, "NOT_FOUND")] * 5
    assert list_jobs(globex)[1] == {"items": [], "next_cursor": None}
    assert db.fetch_value("SELECT status FROM generation_jobs WHERE id = %s", (job_id,)) == "queued"
    assert get_job(acme, job_id)[0] == 200
