"""Personas, generation starts and usage over API Gateway v2 events, through the real handlers."""

from __future__ import annotations

import base64
import json
import uuid
from typing import Any

import pytest
from genjobs.db import Database, record_statements

import functions.generation.app as generation_app
import functions.limits.app as limits_app
from tests.support.events import http_event, invoke, json_body, load_event
from tests.support.fakes import LambdaStub
from tests.support.handlers import HANDLERS
from tests.support.merchants import MerchantClient


def make_persona(client: MerchantClient, **fields: Any) -> str:
    status, body, headers = client.create_persona(**fields)
    assert status == 201, body
    assert headers["Location"] == f"/personas/{body['id']}"
    return str(body["id"])


def test_create_and_read_a_persona(acme: MerchantClient) -> None:
    status, created, _ = acme.create_persona(name="  Pip ", description="A cheerful robot",
                                             product_name="SnackBot", character_type="robot")
    assert status == 201
    assert created["name"] == "Pip" and created["status"] == "draft" and created["video_states"] == {}
    status, read, _ = acme.get_persona(created["id"])
    assert status == 200 and read == created
    assert read["regeneration_available_at"] is None


def test_persona_validation_errors_are_422_and_write_nothing(acme: MerchantClient, db: Database) -> None:
    for body in ({}, {"name": ""}, {"name": "x" * 201}, {"name": "Pip", "merchant_id": "globex"}):
        status, error, _ = acme.call("generation", "POST", "/personas", body=body)
        assert status == 422, body
        assert error["error"]["code"] == "VALIDATION_ERROR" and error["error"]["details"]["errors"]
    status, error, _ = acme.call("generation", "POST", "/personas", raw_body="{not json")
    assert status == 400 and error["error"]["code"] == "BAD_REQUEST"
    assert db.fetch_value("SELECT count(*) FROM personas") == 0


@pytest.mark.parametrize("content_type", ["text/plain", "multipart/form-data", "multipart/form-data; boundary=x",
                                          "application/x-www-form-urlencoded"])
def test_bodies_that_are_not_json_are_415(acme: MerchantClient, db: Database, content_type: str) -> None:
    # found by the fuzz: text/plain and a multipart header without a boundary were 500s
    for route, path in (("/personas", "/personas"),
                        ("/personas/{persona_id}/generations", f"/personas/{uuid.uuid4()}/generations")):
        status, error, _ = acme.call("generation", "POST", path, route=route, raw_body='{"name": "Pip"}',
                                     headers={"Content-Type": content_type})
        assert status == 415, (content_type, path, error)
        assert error["error"]["code"] == "UNSUPPORTED_MEDIA_TYPE"
    assert db.fetch_value("SELECT count(*) FROM personas") == 0


def test_a_body_that_is_not_utf8_is_400(acme: MerchantClient, db: Database) -> None:
    # found by the fuzz: API Gateway passes such a body base64-encoded, and decoding it raised (500)
    event = http_event("POST", "/personas", raw_body="{}", merchant_id="acme")
    event["body"] = base64.b64encode(b'{"name": "Pip\xff"}').decode()
    event["isBase64Encoded"] = True
    response = invoke(generation_app, event)
    assert response["statusCode"] == 400, response
    assert json_body(response)["error"]["code"] == "BAD_REQUEST"
    assert db.fetch_value("SELECT count(*) FROM personas") == 0


@pytest.mark.parametrize("text", ["Pip\x00", "\ud800Pip"], ids=["nul", "lone-surrogate"])
def test_text_postgresql_cannot_store_is_422(acme: MerchantClient, db: Database, lambda_stub: LambdaStub,
                                            text: str) -> None:
    # found by the fuzz: a NUL character (and a lone surrogate) reached PostgreSQL and failed there (500)
    for field in ("name", "description", "product_name", "character_type"):
        body = json.dumps({"name": "Pip", field: text})
        status, error, _ = acme.call("generation", "POST", "/personas", raw_body=body)
        assert status == 422, (field, error)
        assert error["error"]["code"] == "VALIDATION_ERROR"
    persona = make_persona(acme)
    status, error, _ = acme.start_generation(persona, raw_body=json.dumps({"prompt_variables": {"mood": text}}))
    assert status == 422, error
    assert db.fetch_value("SELECT count(*) FROM generation_jobs") == 0


def test_missing_merchant_claim_is_401(db: Database) -> None:
    event = http_event("POST", "/personas", body={"name": "Pip"}, claims={"sub": "someone"})
    response = invoke(generation_app, event)
    assert response["statusCode"] == 401
    assert json_body(response)["error"]["code"] == "UNAUTHORIZED"


def test_start_generation_is_202_dispatches_the_worker_in_one_statement(acme: MerchantClient,
                                                                        lambda_stub: LambdaStub) -> None:
    persona = make_persona(acme)
    lambda_stub.expect_dispatch()
    with record_statements() as recorder:
        status, job, headers = acme.start_generation(persona, {"variation_count": 2})
    assert status == 202, job
    assert job["status"] == "queued" and job["variation_count"] == 2 and job["job_type"] == "character_variations"
    assert job["estimated_cost_usd"] == pytest.approx(0.08) and job["version"] == 1
    assert headers["Location"] == f"/jobs/{job['id']}"
    assert recorder.count == 1, recorder.statements
    lambda_stub.stubber.assert_no_pending_responses()


def test_start_generation_uses_defaults_without_a_body(acme: MerchantClient, lambda_stub: LambdaStub) -> None:
    persona = make_persona(acme)
    lambda_stub.expect_dispatch()
    status, job, _ = acme.start_generation(persona)
    assert status == 202 and job["variation_count"] == 3


@pytest.mark.parametrize("body", [{"variation_count": 0}, {"variation_count": 5}, {"variation_count": "three"},
                                  {"prompt_variables": {"Bad Name": "x"}}, {"unexpected": True}])
def test_invalid_generation_bodies_are_422(acme: MerchantClient, db: Database, body: dict[str, Any]) -> None:
    persona = make_persona(acme)
    status, error, _ = acme.start_generation(persona, body)
    assert status == 422 and error["error"]["code"] == "VALIDATION_ERROR"
    assert db.fetch_value("SELECT count(*) FROM generation_jobs") == 0


def test_unknown_prompt_variable_is_named_in_the_422(acme: MerchantClient) -> None:
    persona = make_persona(acme)
    status, error, _ = acme.start_generation(persona, {"prompt_variables": {"mood": "sunny"}})
    assert status == 422
    assert error["error"]["details"]["unknown"] == ["mood"] and "mood" in error["error"]["message"]


def test_idempotent_replay_over_http(acme: MerchantClient, lambda_stub: LambdaStub) -> None:
    persona = make_persona(acme)
    lambda_stub.expect_dispatch()
    first_status, first, _ = acme.start_generation(persona, {"variation_count": 2}, key="abc-123")
    second_status, second, headers = acme.start_generation(persona, {"variation_count": 2}, key="abc-123")
    assert (first_status, second_status) == (202, 202) and first["id"] == second["id"]
    assert headers.get("Idempotent-Replayed") == "true"
    status, error, _ = acme.start_generation(persona, {"variation_count": 3}, key="abc-123")
    assert status == 409 and error["error"]["code"] == "CONFLICT"
    status, error, _ = acme.start_generation(persona, key="x" * 300)
    assert status == 400 and error["error"]["code"] == "BAD_REQUEST"


def test_rate_limit_is_429_with_retry_after(acme: MerchantClient, lambda_stub: LambdaStub,
                                           monkeypatch: pytest.MonkeyPatch, db: Database) -> None:
    db.execute("INSERT INTO merchants (id, hourly_generation_limit) VALUES ('acme', 1)")
    lambda_stub.expect_dispatch()
    assert acme.start_generation(make_persona(acme))[0] == 202
    status, error, headers = acme.start_generation(make_persona(acme))
    assert status == 429 and error["error"]["code"] == "RATE_LIMITED"
    assert 3500 <= int(headers["Retry-After"]) <= 3600


def test_second_active_job_is_409(acme: MerchantClient, lambda_stub: LambdaStub) -> None:
    persona = make_persona(acme)
    lambda_stub.expect_dispatch()
    acme.start_generation(persona)
    status, error, _ = acme.start_generation(persona)
    assert status == 409 and "active_job_id" in error["error"]["details"]


def test_lost_dispatch_still_answers_202(acme: MerchantClient, lambda_stub: LambdaStub, db: Database) -> None:
    persona = make_persona(acme)
    lambda_stub.fail_dispatch()
    status, job, _ = acme.start_generation(persona)
    assert status == 202 and job["status"] == "queued"
    assert db.fetch_value("SELECT status FROM generation_jobs") == "queued"


def test_state_videos_need_an_active_persona(acme: MerchantClient) -> None:
    persona = make_persona(acme)
    status, error, _ = acme.start_state_videos(persona)
    assert status == 409 and error["error"]["details"]["persona_status"] == "draft"


@pytest.mark.parametrize("states", [["Idle"], ["idle", "idle"], [], ["x" * 41], [f"s{i}" for i in range(11)]])
def test_invalid_state_lists_are_422(acme: MerchantClient, states: list[str]) -> None:
    persona = make_persona(acme)
    status, error, _ = acme.start_state_videos(persona, {"states": states})
    assert status == 422 and error["error"]["code"] == "VALIDATION_ERROR"


def test_delete_persona_then_it_is_404_everywhere(acme: MerchantClient) -> None:
    persona = make_persona(acme)
    status, _, headers = acme.delete_persona(persona)
    assert status == 204
    assert "Content-Type" not in headers  # no body (found by the fuzz: an empty body announced as JSON)
    assert acme.get_persona(persona)[0] == 404
    assert acme.delete_persona(persona)[0] == 404
    assert acme.start_generation(persona)[0] == 404
    assert acme.start_state_videos(persona)[0] == 404


def test_persona_with_active_job_cannot_be_deleted(acme: MerchantClient, lambda_stub: LambdaStub) -> None:
    persona = make_persona(acme)
    lambda_stub.expect_dispatch()
    acme.start_generation(persona)
    status, error, _ = acme.delete_persona(persona)
    assert status == 409 and error["error"]["details"]["active_job_id"]


def test_another_merchants_persona_is_404_on_every_endpoint(acme: MerchantClient, globex: MerchantClient,
                                                           db: Database) -> None:
    persona = make_persona(acme)
    assert globex.get_persona(persona)[0] == 404
    assert globex.start_generation(persona)[0] == 404
    assert globex.start_state_videos(persona)[0] == 404
    assert globex.delete_persona(persona)[0] == 404
    assert acme.get_persona(persona)[0] == 200
    assert db.fetch_value("SELECT count(*) FROM generation_jobs") == 0
    status, usage, _ = globex.usage()
    assert status == 200 and usage["generations_last_hour"] == 0


def test_malformed_ids_are_rejected_not_500(acme: MerchantClient) -> None:
    status, error, _ = acme.get_persona("not-a-uuid")
    assert status == 422 and error["error"]["code"] == "VALIDATION_ERROR"
    assert acme.get_persona(str(uuid.uuid4()))[0] == 404


def test_usage_is_one_statement_and_counts_the_window(acme: MerchantClient, lambda_stub: LambdaStub,
                                                      db: Database) -> None:
    db.execute("INSERT INTO merchants (id, monthly_budget_usd) VALUES ('acme', 5)")
    lambda_stub.expect_dispatch(2)
    acme.start_generation(make_persona(acme))
    acme.start_generation(make_persona(acme))
    with record_statements() as recorder:
        status, usage, _ = acme.usage()
    assert recorder.count == 1, recorder.statements
    assert status == 200
    assert usage["generations_last_hour"] == 2 and usage["hourly_limit"] == 10 and usage["remaining"] == 8
    assert usage["window_resets_at"] is not None
    assert usage["monthly_budget_usd"] == 5.0 and usage["budget_remaining_usd"] == 5.0
    assert usage["cost_today_usd"] == 0.0


def test_usage_provisions_a_new_merchant(db: Database) -> None:
    client = MerchantClient(HANDLERS, "newcomer")
    status, usage, _ = client.usage()
    assert status == 200 and usage["remaining"] == usage["hourly_limit"] == 10
    assert db.fetch_value("SELECT count(*) FROM merchants WHERE id = 'newcomer'") == 1


def test_limits_direct_invokes(db: Database, acme: MerchantClient) -> None:
    persona = make_persona(acme)
    check = invoke(limits_app, load_event("limits/check_rate_limit.json"))
    assert check == {"ok": True, "result": {"allowed": True, "used": 0, "limit": 10, "remaining": 10,
                                            "retry_after_seconds": None}}
    cooldown = invoke(limits_app, {"action": "check_regeneration_cooldown", "merchant_id": "acme",
                                   "persona_id": persona})
    assert cooldown["ok"] and cooldown["result"]["allowed"] is True
    foreign = invoke(limits_app, {"action": "check_regeneration_cooldown", "merchant_id": "globex",
                                  "persona_id": persona})
    assert foreign["ok"] is False and foreign["error"]["code"] == "NOT_FOUND"
    event = load_event("limits/record_usage.json")
    first, second = invoke(limits_app, event), invoke(limits_app, event)
    assert first["result"]["recorded"] is True and second["result"]["recorded"] is False
    assert db.fetch_value("SELECT sum(amount_usd) FROM usage_ledger WHERE merchant_id = 'acme'") == 0.25
    bad = invoke(limits_app, {"action": "record_usage", "merchant_id": "acme", "usage_key": "k", "amount_usd": -1})
    assert bad["ok"] is False and bad["error"]["code"] == "VALIDATION_ERROR"
    unknown = invoke(limits_app, {"action": "drop_tables"})
    assert unknown["ok"] is False and unknown["error"]["code"] == "VALIDATION_ERROR"
