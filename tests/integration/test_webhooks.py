"""Webhooks on a real PostgreSQL and a real HTTP receiver: the outbox (same transaction as the change),
signed delivery, retries, disabling, rotation, SSRF refusals."""

from __future__ import annotations

import base64
import json
import threading
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any
from uuid import UUID

import psycopg
import pytest
from genjobs.adapters.webhooks import HttpSender
from genjobs.data import jobs as job_data
from genjobs.db import Database, record_statements
from genjobs.db.outbox import take_webhooks_pending
from genjobs.models.jobs import Job
from genjobs.models.webhooks import CreateWebhookRequest, UpdateWebhookRequest
from genjobs.ports import WebhookRequest
from genjobs.services import webhooks, worker
from standardwebhooks.webhooks import Webhook

from local_runner.media import LocalMediaStore
from tests.support.fakes import FrozenClock
from tests.support.scenarios import SETTINGS, NoVideos, new_persona, start_job
from tests.support.webhooks import Delivery, Receiver, signatures_valid_for

LEASE = timedelta(seconds=30)


def real_clock() -> FrozenClock:
    """A frozen clock at the real time: the database stamps messages with now(), receivers check timestamps."""
    return FrozenClock(datetime.now(UTC))


def endpoint(db: Database, box: Any, url: str, merchant: str = "acme", events: list[str] | None = None) -> Any:
    request = CreateWebhookRequest.model_validate({"url": url, "events": events})
    return webhooks.create_endpoint(db, box, merchant, request, allow_private=True)


def deliver(db: Database, box: Any, clock: FrozenClock, *, allow_private: bool = True, **kwargs: Any) -> Any:
    sender = kwargs.pop("sender", None) or HttpSender(allow_private=allow_private, timeout_seconds=5)
    return webhooks.deliver_due(db, box, clock, sender=sender, batch=50, lease=LEASE, **kwargs)


def run_variations_job(db: Database, store: LocalMediaStore, clock: FrozenClock, merchant: str = "acme") -> UUID:
    persona = new_persona(db, merchant)
    job_id = start_job(db, merchant, persona, clock=clock, job_type="character_variations", count=2)
    outcome = worker.run_job(db, NoVideos(store), store, job_id, settings=SETTINGS, clock=clock)
    assert outcome.status == "completed"
    return job_id


def test_a_full_job_lifecycle_arrives_signed_in_version_order(db: Database, secret_box: Any, receiver: Receiver,
                                                              store: LocalMediaStore) -> None:
    # Given an endpoint of acme pointed at the receiver
    clock = real_clock()
    created = endpoint(db, secret_box, receiver.url)

    # When a variations job runs to completion and the delivery function runs
    job_id = run_variations_job(db, store, clock)
    run = deliver(db, secret_box, clock)

    # Then every event arrived once, signed with the endpoint's secret (checked from the spec, and by the
    # standardwebhooks package as a receiver would), with the job as GET /jobs shows it
    deliveries = receiver.deliveries
    assert run.delivered == len(deliveries) == run.claimed
    assert all(signatures_valid_for(d, created.secret) for d in deliveries)
    assert all(Webhook(created.secret).verify(d.body, d.headers) for d in deliveries)
    bodies = [d.json() for d in deliveries]
    types = [b["type"] for b in sorted(bodies, key=lambda b: (b["data"]["job"]["version"], b["type"]))]
    assert types[0] == "job.queued" and types[-1] == "job.completed"
    assert {"job.started", "job.progress", "job.output"} <= set(types)
    assert types.count("job.output") == 2
    completed = next(b for b in bodies if b["type"] == "job.completed")
    assert completed["data"]["job"]["id"] == str(job_id)
    assert completed["data"]["job"]["status"] == "completed"
    assert set(completed) == {"type", "timestamp", "data"}
    final = job_data.find_job(db, "acme", job_id)
    assert final is not None and completed["data"]["job"]["version"] == final.version
    assert completed["data"]["job"] == json.loads(final.model_dump_json())
    assert len({d.webhook_id for d in deliveries}) == len(deliveries)


def test_filters_send_only_the_chosen_events(db: Database, secret_box: Any, receiver: Receiver,
                                            store: LocalMediaStore) -> None:
    # Given one endpoint for job.completed only and one for failures only
    clock = real_clock()
    endpoint(db, secret_box, receiver.url, events=["job.completed"])
    endpoint(db, secret_box, receiver.url + "/failures", events=["job.failed", "job.canceled"])

    # When a job completes
    run_variations_job(db, store, clock)
    deliver(db, secret_box, clock)

    # Then only job.completed was sent, to the first endpoint
    assert [(d.path, d.json()["type"]) for d in receiver.deliveries] == [("/hooks", "job.completed")]


def test_a_failed_attempt_is_retried_later_with_the_same_webhook_id(db: Database, secret_box: Any,
                                                                     receiver: Receiver) -> None:
    # Given a receiver that fails once, then recovers
    clock = real_clock()
    endpoint(db, secret_box, receiver.url, events=["job.queued"])
    answers: Iterator[tuple[int, dict[str, str], bytes]] = iter([(503, {}, b"busy" * 400), (200, {}, b"ok")])
    receiver.answer = lambda _: next(answers)
    start_job(db, "acme", new_persona(db, "acme"), clock=clock, job_type="character_variations")

    # When delivery runs now, and again after the first retry delay (5 s +-20 %)
    first = deliver(db, secret_box, clock)
    again_too_soon = deliver(db, secret_box, clock)
    clock.advance(timedelta(seconds=7))
    second = deliver(db, secret_box, clock)

    # Then the retry carried the same webhook-id, and the attempts show what happened (1 KB of the answer kept)
    assert (first.failed, again_too_soon.claimed, second.delivered) == (1, 0, 1)
    assert len({d.webhook_id for d in receiver.deliveries}) == 1 and len(receiver.deliveries) == 2
    endpoint_id = db.fetch_value("SELECT id FROM webhook_endpoints")
    page = webhooks.list_deliveries(db, "acme", endpoint_id, limit=10, cursor=None)
    assert [(a.attempt, a.status_code, a.message_status) for a in page.items] == [
        (2, 200, "delivered"), (1, 503, "delivered")]
    first_attempt = page.items[1]
    assert first_attempt.next_attempt_at is not None and first_attempt.response_body is not None
    assert len(first_attempt.response_body) == 1024 and first_attempt.error == "the receiver answered 503"


def test_the_retry_schedule_spans_more_than_a_day_then_gives_up(db: Database) -> None:
    # Given the schedule of the database (with its jitter, sampled many times)
    rows = db.fetch_all(
        "SELECT s.sample, sum(extract(epoch FROM genjobs_webhook_retry_delay_v1(a))) AS total, "
        "min(extract(epoch FROM genjobs_webhook_retry_delay_v1(1))) AS first "
        "FROM generate_series(1, 200) s(sample), generate_series(1, 7) a GROUP BY s.sample")
    after_last = db.fetch_value("SELECT genjobs_webhook_retry_delay_v1(8)")

    # Then every sampled schedule lasts more than 24 hours, and the 8th failure is the last
    assert min(float(r["total"]) for r in rows) > 24 * 3600
    assert min(float(r["first"]) for r in rows) >= 4
    assert after_last is None


def test_410_disables_the_endpoint_at_once(db: Database, secret_box: Any, receiver: Receiver) -> None:
    # Given a receiver that answers 410 Gone
    clock = real_clock()
    created = endpoint(db, secret_box, receiver.url)
    receiver.answer = lambda _: (410, {}, b"gone")
    start_job(db, "acme", new_persona(db, "acme"), clock=clock, job_type="character_variations")

    # When delivery runs (twice: a second job's event too)
    deliver(db, secret_box, clock)
    start_job(db, "acme", new_persona(db, "acme"), clock=clock, job_type="character_variations")
    clock.advance(timedelta(hours=1))
    deliver(db, secret_box, clock)

    # Then the endpoint was disabled with the reason after the first answer; nothing more was sent or queued
    shown = webhooks.get_endpoint(db, "acme", created.id)
    assert shown.enabled is False and shown.disabled_reason == "The receiver answered 410 Gone."
    assert len(receiver.deliveries) == 1
    assert db.fetch_value("SELECT count(*) FROM webhook_messages") == 1


def test_an_endpoint_failing_for_five_days_is_disabled_with_the_reason(db: Database, secret_box: Any,
                                                                       receiver: Receiver) -> None:
    # Given an endpoint whose receiver always fails
    clock = real_clock()
    created = endpoint(db, secret_box, receiver.url)
    receiver.answer = lambda _: (500, {}, b"")

    # When events keep failing for 5 days (a new job a day, delivery after each)
    for _ in range(6):
        persona = new_persona(db, "acme")
        db.execute("INSERT INTO generation_jobs (merchant_id, persona_id, job_type, model_id, variation_count) "
                   "VALUES ('acme', %s, 'character_variations', 'amazon.nova-canvas-v1:0', 1)", (persona,))
        deliver(db, secret_box, clock)
        clock.advance(timedelta(days=1))

    # Then the endpoint is disabled, saying why
    shown = webhooks.get_endpoint(db, "acme", created.id)
    assert shown.enabled is False
    assert shown.disabled_reason is not None and shown.disabled_reason.startswith("Every delivery failed for 5 days")

    # And re-enabling it clears the reason and the failure streak
    enabled = webhooks.update_endpoint(db, "acme", created.id, UpdateWebhookRequest(enabled=True),
                                       allow_private=True, now=clock())
    assert enabled.enabled and enabled.disabled_reason is None
    assert db.fetch_value("SELECT failing_since FROM webhook_endpoints") is None


def test_after_a_rotation_both_secrets_sign_for_24_hours(db: Database, secret_box: Any, receiver: Receiver) -> None:
    # Given an endpoint whose secret was rotated
    clock = real_clock()
    created = endpoint(db, secret_box, receiver.url, events=["job.queued"])
    rotated = webhooks.rotate_secret(db, secret_box, "acme", created.id, now=clock())

    # When an event is delivered during the overlap, and another after it
    start_job(db, "acme", new_persona(db, "acme"), clock=clock, job_type="character_variations")
    deliver(db, secret_box, clock)
    db.execute("UPDATE webhook_endpoints SET previous_secret_expires_at = now() - interval '1 second'")
    start_job(db, "acme", new_persona(db, "acme"), clock=clock, job_type="character_variations")
    deliver(db, secret_box, clock)

    # Then the first carried two v1 signatures, each valid under its secret; the second only the new one
    during, after = receiver.deliveries
    assert len(during.headers["webhook-signature"].split(" ")) == 2
    assert signatures_valid_for(during, created.secret) and signatures_valid_for(during, rotated.secret)
    assert rotated.secret != created.secret
    assert rotated.previous_secret_expires_at - clock() == timedelta(hours=24)
    assert not signatures_valid_for(after, created.secret) and signatures_valid_for(after, rotated.secret)


def test_a_change_that_rolls_back_emits_nothing(db: Database, secret_box: Any) -> None:
    # Given an endpoint, and a job
    clock = real_clock()
    endpoint(db, secret_box, "http://127.0.0.1:9/never")
    job_id = start_job(db, "acme", new_persona(db, "acme"), clock=clock, job_type="character_variations")
    before = db.fetch_value("SELECT count(*) FROM webhook_messages")

    # When a cancel runs inside a transaction that then fails
    with pytest.raises(RuntimeError), db.transaction() as tx:
        tx.fetch_value("SELECT genjobs_cancel_job_v1(%s, 'acme')", (job_id,))
        assert tx.fetch_value("SELECT count(*) FROM webhook_messages") == before + 1  # written inside it
        raise RuntimeError("the rest of the transaction failed")

    # Then no event of the cancel exists; the committed start's event does
    assert db.fetch_value("SELECT count(*) FROM webhook_messages") == before == 1
    assert db.fetch_value("SELECT event_type FROM webhook_messages") == "job.queued"


def test_a_merchant_without_endpoints_pays_no_extra_statement_and_writes_nothing(db: Database) -> None:
    # Given globex without endpoints, and acme with one
    clock = real_clock()
    db.execute("INSERT INTO merchants (id) VALUES ('acme') ON CONFLICT DO NOTHING")
    db.execute("INSERT INTO webhook_endpoints (merchant_id, url, secret_encrypted) "
               "VALUES ('acme', 'https://a.test', 'x')")
    take_webhooks_pending()

    # When each cancels a job, counting statements
    counts, pending = {}, {}
    for merchant in ("globex", "acme"):
        job_id = start_job(db, merchant, new_persona(db, merchant), clock=clock, job_type="character_variations")
        take_webhooks_pending()
        with record_statements() as recorder:
            job_data.cancel_job(db, merchant_id=merchant, job_id=job_id, now=clock())
        counts[merchant], pending[merchant] = recorder.count, take_webhooks_pending()

    # Then both cancels were one statement; only acme's wrote events and asked for a delivery
    assert counts == {"globex": 1, "acme": 1}
    assert pending == {"globex": False, "acme": True}
    assert db.fetch_value("SELECT count(*) FROM webhook_messages WHERE merchant_id = 'globex'") == 0


# -- one payload per event ------------------------------------------------------------------------------

# what the data layer sends for a claim (genjobs.data.jobs.claim_job through call_writer)
CLAIM = ("SELECT genjobs_claim_job_v2(%s, %s, %s) AS answer, "
         "current_setting('genjobs.webhooks_pending', true) AS webhooks_pending")
PAYLOAD_FUNCTIONS = ("genjobs_enqueue_webhooks_v1", "genjobs_webhook_job_v1", "genjobs_job_outputs_v1")


def test_an_event_for_several_endpoints_builds_its_payload_once(db: Database, database_url: str,
                                                                 secret_box: Any) -> None:
    # Given three endpoints of acme that take job.started, one for failures only, and one paused
    clock = real_clock()
    taking = [endpoint(db, secret_box, f"https://hooks{i}.example.com/") for i in range(2)]
    taking.append(endpoint(db, secret_box, "https://started.example.com/", events=["job.started"]))
    endpoint(db, secret_box, "https://failures.example.com/", events=["job.failed"])
    paused = endpoint(db, secret_box, "https://paused.example.com/")
    webhooks.update_endpoint(db, "acme", paused.id, UpdateWebhookRequest(enabled=False), allow_private=True,
                             now=clock())
    job_id = start_job(db, "acme", new_persona(db, "acme"), clock=clock, job_type="character_variations")

    # When a worker claims the job (one event, job.started), on a connection of this test that counts every
    # function call (track_functions; the counts of the open transaction)
    with psycopg.connect(database_url) as conn:
        conn.execute("SET track_functions = 'all'")
        claim = conn.execute(CLAIM, (job_id, clock(), LEASE)).fetchone()
        counted = conn.execute("SELECT funcname, calls FROM pg_stat_xact_user_functions WHERE funcname = ANY (%s)",
                               (list(PAYLOAD_FUNCTIONS),)).fetchall()
        calls: dict[str, int] = dict(counted)
        conn.commit()

    # Then the statement wrote the event for the three endpoints that take it and said so, and built the
    # job's payload (the snapshot and its outputs query) once, not once per endpoint
    assert claim is not None and claim[0]["status"] == "processing" and claim[1] == "on"
    started = db.fetch_all("SELECT endpoint_id, data FROM webhook_messages "
                           "WHERE job_id = %s AND event_type = 'job.started'", (job_id,))
    assert sorted(str(r["endpoint_id"]) for r in started) == sorted(str(e.id) for e in taking)
    assert all(r["data"] == started[0]["data"] for r in started) and started[0]["data"]["job"]["outputs"] == []
    assert calls == {"genjobs_enqueue_webhooks_v1": 1, "genjobs_webhook_job_v1": 1, "genjobs_job_outputs_v1": 1}


def test_every_endpoint_gets_the_same_payload_for_an_event(db: Database, secret_box: Any,
                                                           store: LocalMediaStore) -> None:
    # Given two endpoints of acme taking every event
    clock = real_clock()
    first = endpoint(db, secret_box, "https://one.example.com/")
    second = endpoint(db, secret_box, "https://two.example.com/")

    # When a variations job runs to completion (its events carry its outputs; job.output events one output more)
    job_id = run_variations_job(db, store, clock)

    # Then each event was written once per endpoint, both messages with the same payload: the job as it was
    # at that version, the completed one as GET /jobs/{id} shows it, outputs included
    rows = db.fetch_all("SELECT endpoint_id, event_type, job_version, data FROM webhook_messages "
                        "WHERE job_id = %s ORDER BY job_version, event_type", (job_id,))
    events: dict[tuple[str, int, str | None], dict[UUID, Any]] = {}
    for row in rows:
        output = row["data"].get("output", {}).get("id")
        events.setdefault((row["event_type"], row["job_version"], output), {})[row["endpoint_id"]] = row["data"]
    assert len(rows) == 2 * len(events) and sum(1 for (kind, _, _) in events if kind == "job.output") == 2
    for payloads in events.values():
        assert set(payloads) == {first.id, second.id}
        assert payloads[first.id] == payloads[second.id]
        assert payloads[first.id]["job"]["id"] == str(job_id)
    completed = next(p[first.id] for (kind, _, _), p in events.items() if kind == "job.completed")
    final = job_data.find_job(db, "acme", job_id)
    assert final is not None and len(final.outputs) == 2
    assert Job.model_validate(completed["job"]) == final


def test_an_endpoint_deleted_while_a_write_waits_for_it_is_left_out(db: Database, database_url: str,
                                                                      secret_box: Any) -> None:
    # Given two endpoints of acme, a queued job, and the delete of one endpoint in a transaction not yet committed
    clock = real_clock()
    kept = endpoint(db, secret_box, "https://kept.example.com/")
    deleted = endpoint(db, secret_box, "https://deleted.example.com/")
    job_id = start_job(db, "acme", new_persona(db, "acme"), clock=clock, job_type="character_variations")
    answers: list[Any] = []
    with psycopg.connect(database_url) as deleting, psycopg.connect(database_url, autocommit=True) as watcher:
        deleting.execute("DELETE FROM webhook_endpoints WHERE id = %s AND merchant_id = 'acme'", (deleted.id,))
        deleter = deleting.info.backend_pid

        # When a worker claims the job meanwhile (its event is for both endpoints: it waits for the delete),
        # and the delete then commits
        def claim() -> None:
            try:
                answers.append(job_data.claim_job(db, job_id, clock(), LEASE))
            except Exception as exc:  # asserted below
                answers.append(exc)

        claimer = threading.Thread(target=claim)
        claimer.start()
        deadline = time.monotonic() + 10
        while watcher.execute("SELECT count(*) FROM pg_stat_activity WHERE %s = ANY (pg_blocking_pids(pid))",
                              (deleter,)).fetchone() != (1,):
            assert time.monotonic() < deadline and claimer.is_alive(), "the claim did not wait for the delete"
        deleting.commit()
        claimer.join(timeout=10)

    # Then the claim succeeded, with its event for the endpoint that is left only
    assert len(answers) == 1 and not isinstance(answers[0], Exception), answers
    assert answers[0] is not None and answers[0].attempt == 1
    assert db.fetch_all("SELECT endpoint_id FROM webhook_messages WHERE job_id = %s AND event_type = 'job.started'",
                        (job_id,)) == [{"endpoint_id": kept.id}]


# -- SSRF ------------------------------------------------------------------------------------------------


def request_to(url: str) -> WebhookRequest:
    return WebhookRequest(message_id="00000000-0000-0000-0000-000000000001", attempt=1, url=url,
                          headers={"webhook-id": "x"}, body="{}")


@pytest.mark.parametrize(("url", "why"), [
    ("https://10.1.2.3/hook", "a private address"),
    ("https://127.0.0.1/hook", "a loopback address"),
    ("https://169.254.169.254/latest/meta-data/", "a link-local address"),
    ("https://[::ffff:169.254.169.254]/", "a link-local address"),
    ("https://100.64.0.1/", "a special-purpose address"),
    ("http://example.com/hook", "the scheme must be https"),
    ("https://localhost/hook", "localhost is not a public host"),
])
def test_the_api_refuses_private_and_special_urls_in_aws_mode(db: Database, secret_box: Any, url: str,
                                                               why: str) -> None:
    request = CreateWebhookRequest(url=url)
    with pytest.raises(Exception, match="cannot be used") as refused:
        webhooks.create_endpoint(db, secret_box, "acme", request, allow_private=False)
    assert why in str(refused.value)


@pytest.mark.parametrize(("resolved", "why"), [
    (["10.0.0.7"], "a private address"),
    (["127.0.0.1"], "a loopback address"),
    (["169.254.169.254"], "a link-local address"),
    (["93.184.216.34", "192.168.1.1"], "a private address"),  # any refused address refuses the attempt
])
def test_the_sender_refuses_names_that_resolve_to_private_addresses(resolved: list[str], why: str) -> None:
    # Given a public-looking name that resolves (at delivery time) to a refused address
    sender = HttpSender(allow_private=False, timeout_seconds=2, resolver=lambda host, port: resolved)

    # When a delivery is attempted
    result = sender.send(request_to("https://hooks.example.com/in"))

    # Then nothing was connected to and the attempt says why
    assert result.status_code is None and result.error is not None and why in result.error


def test_the_connection_goes_to_the_address_that_was_checked(receiver: Receiver) -> None:
    # Given a resolver that answers once with the receiver's address (as a rebinding name would, first)
    port = int(receiver.url.rsplit(":", 1)[1].split("/")[0])
    answers = iter([["127.0.0.1"], ["10.9.9.9"]])
    sender = HttpSender(allow_private=True, timeout_seconds=2, resolver=lambda host, p: next(answers))

    # When the sender posts to the name
    result = sender.send(request_to(f"http://hooks.example.test:{port}/in"))

    # Then it resolved once and connected to that address, naming the host in the Host header
    assert result.status_code == 204
    (delivery,) = receiver.deliveries
    assert delivery.headers["host"] == f"hooks.example.test:{port}"


def test_redirects_are_not_followed(db: Database, secret_box: Any, receiver: Receiver) -> None:
    # Given a receiver that redirects to a private address
    clock = real_clock()
    endpoint(db, secret_box, receiver.url, events=["job.queued"])
    receiver.answer = lambda _: (302, {"Location": "http://10.0.0.1/steal"}, b"")
    start_job(db, "acme", new_persona(db, "acme"), clock=clock, job_type="character_variations")

    # When delivery runs
    run = deliver(db, secret_box, clock)

    # Then the redirect was not followed: a failed attempt that says so
    assert run.failed == 1 and len(receiver.deliveries) == 1
    error = db.fetch_value("SELECT error FROM webhook_attempts")
    assert error == "redirect to 'http://10.0.0.1/steal' not followed"


def test_secrets_are_stored_encrypted(db: Database, secret_box: Any) -> None:
    created = endpoint(db, secret_box, "https://hooks.example.com/in")
    stored = db.fetch_value("SELECT secret_encrypted FROM webhook_endpoints")
    raw = base64.b64decode(created.secret.removeprefix("whsec_"))
    assert created.secret.startswith("whsec_") and len(raw) == 32
    assert created.secret not in stored and created.secret.removeprefix("whsec_") not in stored
    assert secret_box.decrypt(stored) == created.secret


def test_a_slow_receiver_times_out(receiver: Receiver) -> None:
    import threading

    release = threading.Event()

    def slow(_: Delivery) -> tuple[int, dict[str, str], bytes]:
        release.wait(5)
        return 200, {}, b""

    receiver.answer = slow
    sender = HttpSender(allow_private=True, timeout_seconds=0.5)
    try:
        result = sender.send(request_to(receiver.url))
    finally:
        release.set()
    assert result.status_code is None and result.error is not None and "timed out" in result.error
    assert 400 <= result.duration_ms < 3000
