"""Webhooks through the local runner: an endpoint on a local receiver (http://127.0.0.1, allowed only by the
runner) gets every event of a job, signed, and /deliveries shows the attempts."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from standardwebhooks.webhooks import Webhook

from tests.support.runner_process import Merchant, wait_for_job
from tests.support.webhooks import Receiver, running_receiver, signatures_valid_for


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    with running_receiver() as running:
        yield running


def test_a_local_receiver_gets_every_event_of_a_job_signed(merchant: Merchant, receiver: Receiver) -> None:
    # Given an endpoint on a local receiver
    created = merchant.call("POST", "/webhooks", {"url": receiver.url, "description": "local"})
    assert created.status == 201, created.json
    secret, webhook_id = created.json["secret"], created.json["id"]

    # When a generation runs to completion
    persona = merchant.call("POST", "/personas", {"name": "Hooky"}).json["id"]
    job = merchant.call("POST", f"/personas/{persona}/generations", {"variation_count": 1}).json
    finished = wait_for_job(merchant, job["id"])

    # Then the receiver got the job's events up to job.completed, each verified by the standardwebhooks
    # package and by the spec's HMAC, carrying the job's version
    deliveries = receiver.wait_for(lambda got: any(d.json()["type"] == "job.completed" for d in got))
    verified = [Webhook(secret).verify(d.body, d.headers) for d in deliveries]
    assert all(signatures_valid_for(d, secret) for d in deliveries)
    assert {v["type"] for v in verified} >= {"job.queued", "job.started", "job.output", "job.completed"}
    completed = next(v for v in verified if v["type"] == "job.completed")
    assert completed["data"]["job"]["version"] == finished["version"]
    assert completed["data"]["job"] == finished

    # And /deliveries lists the attempts, all delivered at the first attempt
    attempts = merchant.call("GET", f"/webhooks/{webhook_id}/deliveries?limit=100").json["items"]
    assert len(attempts) == len({d.webhook_id for d in deliveries})
    assert all(a["attempt"] == 1 and a["status_code"] == 204 for a in attempts)
