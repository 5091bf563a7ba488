"""Every enabled model through the local runner (`make run`): GET /models lists it, and a job on it completes
with the local provider, charged at that model's price."""

from __future__ import annotations

from tests.support.runner_process import Merchant, wait_for_job


def test_a_job_on_every_enabled_model_completes_locally(merchant: Merchant) -> None:
    # Given the models the runner offers
    listed = merchant.call("GET", "/models")
    assert listed.status == 200, listed.body
    models = listed.json["items"]
    image_models = [m for m in models if m["kind"] == "image"]
    video_models = [m for m in models if m["kind"] == "video"]
    assert len({m["family"] for m in models}) >= 2 and image_models and video_models

    # When a persona per image model (regeneration cooldowns are per persona) gets variations from it
    persona = ""
    for model in image_models:
        fresh = merchant.call("POST", "/personas", {"name": f"Pip {model['family']}"}).json["id"]
        started = merchant.call("POST", f"/personas/{fresh}/generations", {"variation_count": 1, "model": model["id"]})
        assert started.status == 202, started.body
        job = wait_for_job(merchant, started.json["id"])
        # Then each completed on its model, at its price
        assert (job["status"], job["model_id"]) == ("completed", model["id"]), job
        assert abs(job["cost_usd"] - model["unit_price_usd"]) < 1e-9
        persona = fresh

    # And state videos from the approved image complete on each video model
    variation_id = merchant.call("GET", f"/personas/{persona}/variations").json["items"][0]["id"]
    approved = merchant.call("POST", f"/personas/{persona}/approve-variation", {"variation_id": variation_id})
    assert approved.status == 200, approved.body
    for model in video_models:
        started = merchant.call("POST", f"/personas/{persona}/state-videos", {"states": ["idle"], "model": model["id"]})
        assert started.status == 202, started.body
        job = wait_for_job(merchant, started.json["id"])
        assert (job["status"], job["model_id"]) == ("completed", model["id"]), job
        assert job["cost_usd"] > 0
