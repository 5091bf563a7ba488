"""Model choice through HTTP: GET /models for merchants, and `model` in the start bodies (422 naming the
allowed ids for an unknown, disabled, wrong-kind or eol model; the chosen model recorded on the job)."""

from __future__ import annotations

from genjobs.db import Database

from tests.support.fakes import LambdaStub
from tests.support.merchants import MerchantClient

IMAGE_MODELS = ["stability.stable-image-core-v1:1", "stability.sd3-5-large-v1:0", "stability.stable-image-ultra-v1:1"]


def test_get_models_lists_the_enabled_models_with_price_default_and_lifecycle(acme: MerchantClient) -> None:
    status, body, _ = acme.call("generation", "GET", "/models")
    assert status == 200
    by_id = {m["id"]: m for m in body["items"]}
    assert sorted(by_id) == sorted([*IMAGE_MODELS, "luma.ray-v2:0"])  # eol and disabled rows are not offered
    assert {m["kind"] for m in body["items"]} == {"image", "video"}
    core, luma = by_id["stability.stable-image-core-v1:1"], by_id["luma.ray-v2:0"]
    assert (core["default"], core["unit"], core["unit_price_usd"], core["lifecycle"]) == (True, "image", 0.04,
                                                                                         "active")
    assert (luma["default"], luma["unit"], luma["price_resolution"], luma["region"]) == (True, "video_second",
                                                                                         "720p", "us-west-2")
    assert all(m["price_source"] for m in body["items"])


def test_a_chosen_model_is_recorded_on_the_job(acme: MerchantClient, lambda_stub: LambdaStub) -> None:
    lambda_stub.expect_dispatch()
    _, persona, _ = acme.create_persona()
    status, job, _ = acme.start_generation(persona["id"], {"variation_count": 2,
                                                           "model": "stability.stable-image-ultra-v1:1"})
    assert status == 202 and job["model_id"] == "stability.stable-image-ultra-v1:1"
    assert job["estimated_cost_usd"] == 0.28


def test_unknown_disabled_wrong_kind_and_eol_models_are_422_naming_the_allowed_ones(
        acme: MerchantClient, db: Database) -> None:
    _, persona, _ = acme.create_persona()
    for model, reason in [("no.such-model:0", "unknown"), ("amazon.nova-canvas-v1:0", "disabled"),
                          ("luma.ray-v2:0", "wrong_kind")]:
        status, error, _ = acme.start_generation(persona["id"], {"model": model})
        assert status == 422, error
        assert error["error"]["code"] == "VALIDATION_ERROR"
        assert error["error"]["details"] == {"model": model, "reason": reason, "kind": "image",
                                             "allowed": IMAGE_MODELS}
    db.execute("UPDATE model_configurations SET lifecycle = 'eol' WHERE model_id = 'luma.ray-v2:0'")
    db.execute("UPDATE personas SET status = 'active' WHERE id = %s", (persona["id"],))
    status, error, _ = acme.start_state_videos(persona["id"], {"model": "luma.ray-v2:0"})
    assert status == 422 and error["error"]["details"]["reason"] == "eol"
    assert error["error"]["details"]["allowed"] == []
    # a malformed id never reaches the database
    status, error, _ = acme.start_generation(persona["id"], {"model": "x" * 201})
    assert status == 422
    assert db.fetch_value("SELECT count(*) FROM generation_jobs") == 0
