"""Variation listing and approval through the approval handler (HTTP and direct invoke)."""

from __future__ import annotations

from typing import Any
from uuid import UUID

import pytest
from genjobs.db import Database, record_statements

import functions.approval.app as approval_app
from local_runner.media import LocalMediaStore
from tests.support.events import invoke, json_body, load_event
from tests.support.fakes import FrozenClock
from tests.support.merchants import MerchantClient
from tests.support.scenarios import new_persona, persona_with_variations


def variations(client: MerchantClient, persona: Any, **query: str) -> tuple[int, Any, dict[str, str]]:
    return client.call("approval", "GET", f"/personas/{persona}/variations", route="/personas/{persona_id}/variations",
                       path_parameters={"persona_id": str(persona)}, query=query or None)


def approve(client: MerchantClient, persona: Any, body: Any) -> tuple[int, Any, dict[str, str]]:
    return client.call("approval", "POST", f"/personas/{persona}/approve-variation",
                       route="/personas/{persona_id}/approve-variation", path_parameters={"persona_id": str(persona)},
                       body=body)


def test_list_then_approve_a_variation(acme: MerchantClient, db: Database, store: LocalMediaStore) -> None:
    # Given a persona whose variations job completed
    persona, job_id, ids = persona_with_variations(db, "acme", store, clock=FrozenClock())

    # When the merchant lists the variations and approves one
    with record_statements() as listing:
        status, listed, _ = variations(acme, persona)
    with record_statements() as approving:
        approved_status, persona_after, _ = approve(acme, persona, {"variation_id": str(ids[2])})

    # Then the list was one statement; the approval one round trip (<= 2 allowed) that made the persona active
    assert listing.count == 1 and approving.count == 1, approving.statements
    assert status == 200 and listed["job_id"] == str(job_id) and listed["job_status"] == "completed"
    assert [v["variation_index"] for v in listed["items"]] == [0, 1, 2]
    assert listed["approved_variation_id"] is None and not any(v["approved"] for v in listed["items"])
    assert approved_status == 200 and persona_after["status"] == "active"
    assert persona_after["approved_variation_id"] == str(ids[2])
    assert persona_after["image_url"] == listed["items"][2]["image_url"]
    relisted = variations(acme, persona)[1]
    assert [v["approved"] for v in relisted["items"]] == [False, False, True]

    # and approving it again is a 200 no-op
    again_status, again, _ = approve(acme, persona, {"variation_id": str(ids[2])})
    assert again_status == 200 and again["version"] == persona_after["version"]


def test_list_variations_of_a_persona_without_jobs_and_of_a_given_job(acme: MerchantClient, db: Database,
                                                                     store: LocalMediaStore) -> None:
    persona = new_persona(db, "acme")
    status, listed, _ = variations(acme, persona)
    assert status == 200 and listed["items"] == [] and listed["job_id"] is None
    with_job, job_id, _ = persona_with_variations(db, "acme", store, clock=FrozenClock())
    assert variations(acme, with_job, job_id=str(job_id))[1]["job_id"] == str(job_id)
    assert variations(acme, with_job, job_id=str(UUID(int=3)))[0] == 404


@pytest.mark.parametrize("body", [{}, {"variation_id": "nope"}, {"variation_id": None}, {"extra": 1}])
def test_invalid_approval_bodies_are_422(acme: MerchantClient, db: Database, body: dict[str, Any]) -> None:
    status, error, _ = approve(acme, new_persona(db, "acme"), body)
    assert status == 422 and error["error"]["code"] == "VALIDATION_ERROR"


def test_approval_of_a_running_jobs_variation_is_409(acme: MerchantClient, db: Database) -> None:
    persona = new_persona(db, "acme")
    db.execute("UPDATE personas SET status = 'generating' WHERE id = %s", (persona,))
    job = db.fetch_value("INSERT INTO generation_jobs (merchant_id, persona_id, job_type, variation_count, status) "
                         "VALUES ('acme', %s, 'character_variations', 1, 'queued') RETURNING id", (persona,))
    db.execute("UPDATE generation_jobs SET status = 'processing' WHERE id = %s", (job,))
    variation = db.fetch_value("INSERT INTO character_variations (job_id, persona_id, merchant_id, variation_index, "
                               "seed, image_url) VALUES (%s, %s, 'acme', 0, 1, 'u') RETURNING id", (job, persona))
    status, error, _ = approve(acme, persona, {"variation_id": str(variation)})
    assert status == 409 and error["error"]["details"]["job_status"] == "processing"
    assert db.fetch_value("SELECT status FROM personas WHERE id = %s", (persona,)) == "generating"


def test_another_merchants_persona_or_variation_is_404_on_every_approval_endpoint(
        acme: MerchantClient, globex: MerchantClient, db: Database, store: LocalMediaStore) -> None:
    clock = FrozenClock()
    persona, _, ids = persona_with_variations(db, "acme", store, clock=clock)
    own_persona, _, _ = persona_with_variations(db, "globex", store, clock=clock)
    answers = [variations(globex, persona),
               approve(globex, persona, {"variation_id": str(ids[0])}),
               approve(globex, own_persona, {"variation_id": str(ids[0])})]
    assert [(s, e["error"]["code"]) for s, e, _ in answers] == [(404, "NOT_FOUND")] * 3
    direct = invoke(approval_app, {"action": "approve_variation", "merchant_id": "globex", "persona_id": str(persona),
                                   "variation_id": str(ids[0])})
    assert direct["ok"] is False and direct["error"]["code"] == "NOT_FOUND"
    assert db.fetch_value("SELECT count(*) FROM character_variations WHERE approved") == 0
    assert db.fetch_value("SELECT status FROM personas WHERE id = %s", (persona,)) == "pending_approval"


def test_direct_invoke_and_sample_events(acme: MerchantClient, db: Database, store: LocalMediaStore) -> None:
    # Given a persona and the sample events pointed at it
    persona, _, ids = persona_with_variations(db, "acme", store, clock=FrozenClock())
    direct = load_event("approval/approve_variation.json") | {"persona_id": str(persona), "variation_id": str(ids[1])}
    http = load_event("approval/list_variations.json")
    http["pathParameters"]["persona_id"] = str(persona)
    http["rawPath"] = http["requestContext"]["http"]["path"] = f"/personas/{persona}/variations"

    # When a trusted caller approves through the direct-invoke envelope, and the listing event is replayed
    answer = invoke(approval_app, direct)
    listed = invoke(approval_app, http)

    # Then the approval is applied and visible in the listing
    assert answer["ok"] and answer["result"]["approved_variation_id"] == str(ids[1])
    assert answer["result"]["status"] == "active"
    assert listed["statusCode"] == 200 and json_body(listed)["approved_variation_id"] == str(ids[1])
    bad = invoke(approval_app, {"action": "approve_variation", "merchant_id": "acme", "persona_id": str(persona)})
    assert bad["ok"] is False and bad["error"]["code"] == "VALIDATION_ERROR"
