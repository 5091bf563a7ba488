"""Hostile input through the handlers: bodies, identity claims, direct-invoke payloads and S3 records that once
raised (a 500, an INTERNAL_ERROR, a retried event) now get the clear error they deserve (hardening, faults 3,
4, 7 and 8)."""

from __future__ import annotations

from typing import Any

import pytest
from genjobs.db import Database

import functions.generation.app as generation_app
import functions.limits.app as limits_app
import functions.progress.app as progress_app
from tests.support.events import http_event, invoke, json_body


def post_personas(raw_body: str, **kwargs: Any) -> dict[str, Any]:
    event = http_event("POST", "/personas", raw_body=raw_body, headers={"content-type": "application/json"},
                       merchant_id=kwargs.pop("merchant_id", "acme"), **kwargs)
    return invoke(generation_app, event)


@pytest.mark.parametrize(("raw_body", "says"), [
    ("[" * 1000 + "]" * 1000, "nested deeper than 32"),                       # RecursionError in json.loads
    ('{"name": ' + "9" * 5000 + "}", "longer than 64 characters"),           # int-string limit: ValueError
    ('{"name": "' + "x" * 70_000 + '"}', "larger than 65536 bytes"),
    ('{"name": 1e' + "9" * 70 + "}", "longer than 64 characters"),
])
def test_hostile_bodies_are_400_not_500(db: Database, raw_body: str, says: str) -> None:
    response = post_personas(raw_body)
    assert response["statusCode"] == 400, response
    body = json_body(response)
    assert body["error"]["code"] == "BAD_REQUEST" and says in body["error"]["message"]
    assert db.fetch_value("SELECT count(*) FROM personas") == 0


def test_brackets_and_digits_inside_strings_are_only_text(db: Database) -> None:
    # Given a name full of brackets and a long run of digits, inside a JSON string
    name = "[" * 100 + "1" * 100
    response = post_personas('{"name": "' + name + '", "description": "\\"[{"}')
    # Then it is an ordinary persona (the bounds look outside strings only; escaped quotes stay inside)
    assert response["statusCode"] == 201, response
    assert json_body(response)["name"] == name


@pytest.mark.parametrize("merchant", ["acme\x00", "ac\ud800me", " acme ", "acme\n", "", "x" * 201])
def test_unusable_merchant_claims_are_401(db: Database, merchant: str) -> None:
    event = http_event("GET", "/usage", claims={"merchant_id": merchant})
    response = invoke(limits_app, event)
    assert response["statusCode"] == 401, response
    assert json_body(response)["error"]["code"] == "UNAUTHORIZED"
    assert db.fetch_value("SELECT count(*) FROM merchants") == 0


@pytest.mark.parametrize("payload", [
    {"action": "update_current_step", "job_id": "0b7c2a4e-5d0e-4a57-9a3c-1f2e3d4c5b6a", "step": "a\x00b"},
    {"action": "mark_failed", "job_id": "0b7c2a4e-5d0e-4a57-9a3c-1f2e3d4c5b6a", "error_code": "X",
     "error_message": "bad\x00"},
    {"action": "get_job_progress", "job_id": "0b7c2a4e-5d0e-4a57-9a3c-1f2e3d4c5b6a", "merchant_id": "acme\x00"},
])
def test_nul_in_progress_commands_is_a_validation_error(db: Database, payload: dict[str, Any]) -> None:
    answer = invoke(progress_app, payload)
    assert answer["ok"] is False and answer["error"]["code"] == "VALIDATION_ERROR", answer


def test_nul_in_a_usage_key_is_a_validation_error(db: Database) -> None:
    answer = invoke(limits_app, {"action": "record_usage", "merchant_id": "acme", "usage_key": "k\x00",
                                 "amount_usd": "1"})
    assert answer["ok"] is False and answer["error"]["code"] == "VALIDATION_ERROR", answer
    assert db.fetch_value("SELECT count(*) FROM usage_ledger") == 0


@pytest.mark.parametrize("record", [
    {"eventSource": "aws:s3"},                                                       # no s3, no eventName
    {"eventSource": "aws:s3", "eventName": "ObjectCreated:Put"},                     # no s3
    {"eventSource": "aws:s3", "eventName": "ObjectCreated:Put", "s3": {"bucket": {"name": "b"}}},  # no object
    {"eventSource": "aws:s3", "eventName": 7, "s3": {"bucket": {"name": "b"}, "object": {"key": "k"}}},
])
def test_malformed_s3_records_are_logged_and_dropped(db: Database, record: dict[str, Any]) -> None:
    answer = invoke(progress_app, {"Records": [record]})
    assert answer["records"] == [{"bucket": "", "key": "", "outcome": "ignored", "reason": "malformed S3 record",
                                  "job_id": None, "state": None, "job_status": None, "progress": None,
                                  "charged": False}]


def test_an_object_size_beyond_bigint_is_no_size(db: Database) -> None:
    record = {"eventSource": "aws:s3", "eventName": "ObjectCreated:Put",
              "s3": {"bucket": {"name": "genjobs-media-local"},
                     "object": {"key": "jobs/0b7c2a4e-5d0e-4a57-9a3c-1f2e3d4c5b6a/idle/x/output.mp4",
                                "size": 2**70}}}
    answer = invoke(progress_app, {"Records": [record]})
    (recorded,) = answer["records"]
    assert recorded["outcome"] == "ignored" and recorded["reason"] == "unknown job"
