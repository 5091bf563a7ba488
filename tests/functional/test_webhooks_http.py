"""The /webhooks routes through the webhooks handler (API Gateway events), and its direct invokes."""

from __future__ import annotations

from typing import Any

import pytest
from genjobs.db import Database

import functions.webhooks.app as webhooks_app
from tests.support.events import invoke
from tests.support.fakes import LambdaStub
from tests.support.merchants import MerchantClient
from tests.support.webhooks import Receiver, signatures_valid_for

WEBHOOK_ROUTE = "/webhooks/{webhook_id}"


def call(client: MerchantClient, method: str, suffix: str = "", webhook_id: str | None = None,
         **kwargs: Any) -> tuple[int, Any, dict[str, str]]:
    if webhook_id is None:
        return client.call("webhooks", method, "/webhooks" + suffix, **kwargs)
    return client.call("webhooks", method, f"/webhooks/{webhook_id}{suffix}", route=WEBHOOK_ROUTE + suffix,
                       path_parameters={"webhook_id": webhook_id}, **kwargs)


def create(client: MerchantClient, url: str = "https://hooks.example.com/genjobs", **fields: Any) -> dict[str, Any]:
    status, body, _ = call(client, "POST", body={"url": url, **fields})
    assert status == 201, body
    return dict(body)


@pytest.mark.usefixtures("webhook_parts")
def test_endpoint_crud_shows_the_secret_only_once(acme: MerchantClient) -> None:
    # When acme creates an endpoint, lists it, reads it, changes it and deletes it
    status, created, headers = call(acme, "POST", body={"url": "https://hooks.example.com/a",
                                                       "events": ["job.completed", "job.failed"],
                                                       "description": "prod"})
    listed = call(acme, "GET")[1]
    shown = call(acme, "GET", webhook_id=created["id"])[1]
    patched = call(acme, "PATCH", webhook_id=created["id"], body={"events": ["job.completed"], "enabled": False})[1]
    deleted = call(acme, "DELETE", webhook_id=created["id"])[0]
    after = call(acme, "GET", webhook_id=created["id"])[0]

    # Then the secret came with the 201 only; the rest show the endpoint without it
    assert status == 201 and headers["Location"] == f"/webhooks/{created['id']}"
    assert created["secret"].startswith("whsec_") and created["events"] == ["job.completed", "job.failed"]
    assert [i["id"] for i in listed["items"]] == [created["id"]]
    assert "secret" not in listed["items"][0] and "secret" not in shown
    assert shown["description"] == "prod" and shown["enabled"] is True
    assert patched["events"] == ["job.completed"] and patched["enabled"] is False
    assert patched["disabled_reason"] == "Disabled by the merchant."
    assert (deleted, after) == (204, 404)


@pytest.mark.usefixtures("webhook_parts")
def test_another_merchants_endpoint_does_not_exist(acme: MerchantClient, globex: MerchantClient) -> None:
    # Given acme's endpoint
    webhook_id = create(acme)["id"]

    # When globex tries every route on it
    answers = [
        call(globex, "GET", webhook_id=webhook_id)[0],
        call(globex, "PATCH", webhook_id=webhook_id, body={"description": "mine"})[0],
        call(globex, "DELETE", webhook_id=webhook_id)[0],
        call(globex, "POST", "/rotate-secret", webhook_id=webhook_id)[0],
        call(globex, "POST", "/test", webhook_id=webhook_id)[0],
        call(globex, "GET", "/deliveries", webhook_id=webhook_id)[0],
    ]

    # Then each is 404, and acme's endpoint is unchanged
    assert answers == [404] * 6
    assert call(globex, "GET")[1] == {"items": []}
    assert call(acme, "GET", webhook_id=webhook_id)[1]["description"] is None


@pytest.mark.usefixtures("webhook_parts")
@pytest.mark.parametrize(("body", "status"), [
    ({"url": "http://hooks.example.com/a"}, 422),          # https only outside the local runner
    ({"url": "https://169.254.169.254/latest"}, 422),     # the metadata service
    ({"url": "https://10.0.0.5/a"}, 422),
    ({"url": "https://user:pw@hooks.example.com/"}, 422),
    ({"url": "https://hooks.example.com/", "events": ["job.exploded"]}, 422),
    ({"url": "https://hooks.example.com/", "events": []}, 422),
    ({"url": "https://hooks.example.com/", "surprise": 1}, 422),
    ({"url": "not a url"}, 422),
])
def test_bad_endpoints_are_refused_with_a_clear_error(acme: MerchantClient, body: dict[str, Any], status: int) -> None:
    answer, error, _ = call(acme, "POST", body=body)
    assert answer == status and error["error"]["code"] == "VALIDATION_ERROR", error


@pytest.mark.usefixtures("webhook_parts")
def test_a_ping_is_delivered_signed_and_deliveries_page_by_keyset(acme: MerchantClient, lambda_stub: LambdaStub,
                                                                   receiver: Receiver, db: Database) -> None:
    # Given an endpoint on the receiver (allowed here as the local runner allows it)
    db.execute("INSERT INTO merchants (id) VALUES ('acme') ON CONFLICT DO NOTHING")
    from genjobs import dependencies
    from genjobs.settings import Settings

    settings = Settings(webhook_allow_private_urls=True)
    with dependencies.overridden(settings=settings):
        created = create(acme, url=receiver.url)
        # When three pings are sent (each asks the webhooks function for a delivery) and it delivers
        lambda_stub.expect_dispatch(3, function_name="genjobs-webhooks")
        pings = [call(acme, "POST", "/test", webhook_id=created["id"]) for _ in range(3)]
        delivered = invoke(webhooks_app, {"action": "deliver_webhooks"})
        first = call(acme, "GET", "/deliveries", webhook_id=created["id"], query={"limit": "2"})[1]
        second = call(acme, "GET", "/deliveries", webhook_id=created["id"],
                      query={"limit": "2", "cursor": first["next_cursor"]})[1]
        bad = call(acme, "GET", "/deliveries", webhook_id=created["id"], query={"cursor": "bm9wZQ"})

    # Then each ping arrived signed with the secret, and the attempts page newest first without overlap
    lambda_stub.stubber.assert_no_pending_responses()
    assert [p[0] for p in pings] == [202] * 3 and delivered["result"]["delivered"] == 3
    assert [d.json()["type"] for d in receiver.deliveries] == ["ping"] * 3
    assert all(signatures_valid_for(d, created["secret"]) for d in receiver.deliveries)
    ids = [a["id"] for a in first["items"]] + [a["id"] for a in second["items"]]
    assert len(ids) == 3 and ids == sorted(ids, reverse=True) and second["next_cursor"] is None
    assert {a["message_id"] for a in first["items"] + second["items"]} == {p[1]["message_id"] for p in pings}
    assert all(a["status_code"] == 204 and a["attempt"] == 1 for a in first["items"])
    assert bad[0] == 400 and bad[1]["error"]["code"] == "BAD_REQUEST"


@pytest.mark.usefixtures("webhook_parts")
def test_a_job_change_asks_for_a_delivery_only_when_the_merchant_has_endpoints(
        acme: MerchantClient, globex: MerchantClient, lambda_stub: LambdaStub) -> None:
    # Given acme with an endpoint and globex without, each with a queued job
    create(acme)
    jobs = {}
    for client in (acme, globex):
        persona = client.create_persona()[1]["id"]
        lambda_stub.expect_dispatch()  # the worker
        if client is acme:
            lambda_stub.expect_dispatch(function_name="genjobs-webhooks")  # job.queued
        jobs[client.merchant_id] = client.start_generation(persona)[1]["id"]

    # When both cancel their job
    lambda_stub.expect_dispatch(function_name="genjobs-webhooks")  # acme's job.canceled, and nothing for globex
    for client in (acme, globex):
        status, _, _ = client.call("progress", "POST", f"/jobs/{jobs[client.merchant_id]}/cancel",
                                   route="/jobs/{job_id}/cancel", path_parameters={"job_id": jobs[client.merchant_id]})
        assert status == 200

    # Then exactly the expected invokes happened (the stubber refuses any other)
    lambda_stub.stubber.assert_no_pending_responses()


def test_the_sender_reports_results_and_a_failed_report_returns_the_batch(receiver: Receiver) -> None:
    import json

    from genjobs.adapters.webhooks import HttpSender

    import functions.webhook_sender.app as sender_app
    from tests.support.fakes import RecordingInvoker

    # Given a batch of two signed requests from the queue (and a malformed one)
    def record(number: int) -> dict[str, Any]:
        request = {"message_id": f"00000000-0000-0000-0000-00000000000{number}", "attempt": 1, "url": receiver.url,
                   "headers": {"webhook-id": f"m{number}"}, "body": "{}"}
        return {"messageId": f"sqs-{number}", "body": json.dumps(request), "eventSource": "aws:sqs"}

    event = {"Records": [record(1), record(2), {"messageId": "sqs-bad", "body": "{", "eventSource": "aws:sqs"}]}
    sender = HttpSender(allow_private=True, timeout_seconds=2)

    # When the sender handles it with a working report, then with a failing one
    reporter = RecordingInvoker()
    ok = sender_app.handle_batch(event, sender=sender, invoker=reporter, webhooks_function="genjobs-webhooks")
    failing = sender_app.handle_batch(event, sender=sender, invoker=RecordingInvoker(fail=True),
                                      webhooks_function="genjobs-webhooks")

    # Then the results went to the webhooks function; a failed report returns the posted messages to SQS
    ((function, payload),) = reporter.calls
    assert function == "genjobs-webhooks" and payload["action"] == "record_webhook_attempts"
    assert [(r["message_id"][-1], r["status_code"]) for r in payload["results"]] == [("1", 204), ("2", 204)]
    assert ok == {"batchItemFailures": []}
    assert failing == {"batchItemFailures": [{"itemIdentifier": "sqs-1"}, {"itemIdentifier": "sqs-2"}]}
    assert len(receiver.deliveries) == 4
