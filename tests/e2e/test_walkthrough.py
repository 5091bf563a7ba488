"""The main job end to end over HTTP, as a merchant's integration would drive it: persona → variations →
approval → state videos → the persona with its videos, every media URL downloadable."""

from __future__ import annotations

import uuid

from tests.support.runner_process import Merchant, get_url, wait_for_job

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


def test_full_flow_from_persona_to_state_videos(merchant: Merchant) -> None:
    created = merchant.call("POST", "/personas", {"name": "Chef Remy", "product_name": "Remy Knives",
                                                  "character_type": "cartoon chef"})
    assert created.status == 201, created.body
    persona = created.json
    assert persona["status"] == "draft"
    persona_id = persona["id"]

    key = f"e2e-{uuid.uuid4()}"
    started = merchant.call("POST", f"/personas/{persona_id}/generations", {"variation_count": 3},
                            headers={"Idempotency-Key": key})
    assert started.status == 202, started.body
    job_id = started.json["id"]
    assert started.json["status"] in ("queued", "processing", "completed")
    replay = merchant.call("POST", f"/personas/{persona_id}/generations", {"variation_count": 3},
                           headers={"Idempotency-Key": key})
    assert replay.status == 202, replay.body
    assert replay.json["id"] == job_id

    job = wait_for_job(merchant, job_id)
    assert job["status"] == "completed", job
    assert job["progress"] == 100
    assert len(job["variation_urls"]) == 3
    assert job["cost_usd"] > 0
    for url in job["variation_urls"]:
        image = get_url(url)
        assert image.status == 200, url
        assert image.header("content-type") == "image/png"
        assert image.body.startswith(PNG_MAGIC)

    variations = merchant.call("GET", f"/personas/{persona_id}/variations")
    assert variations.status == 200, variations.body
    items = variations.json["items"]
    assert [v["variation_index"] for v in items] == [0, 1, 2]
    assert len({v["seed"] for v in items}) == 3
    chosen = items[1]

    approved = merchant.call("POST", f"/personas/{persona_id}/approve-variation", {"variation_id": chosen["id"]})
    assert approved.status == 200, approved.body
    assert approved.json["status"] == "active"
    assert approved.json["approved_variation_id"] == chosen["id"]
    assert approved.json["image_url"] == chosen["image_url"]
    again = merchant.call("POST", f"/personas/{persona_id}/approve-variation", {"variation_id": chosen["id"]})
    assert again.status == 200, again.body

    states = ["idle", "talking", "thinking"]
    videos = merchant.call("POST", f"/personas/{persona_id}/state-videos", {"states": states})
    assert videos.status == 202, videos.body
    video_job = wait_for_job(merchant, videos.json["id"])
    assert video_job["status"] == "completed", video_job
    assert sorted(video_job["states_generated"]) == sorted(states)
    assert video_job["total_states"] == 3

    final = merchant.call("GET", f"/personas/{persona_id}")
    assert final.status == 200, final.body
    video_states = final.json["video_states"]
    assert sorted(video_states) == sorted(states)
    for state, url in video_states.items():
        video = get_url(url)
        assert video.status == 200, (state, url)
        assert video.header("content-type") == "video/mp4"
        assert video.body[4:8] == b"ftyp"

    timeline = merchant.call("GET", f"/jobs/{videos.json['id']}/events")
    assert timeline.status == 200, timeline.body
    jobs = merchant.call("GET", f"/jobs?persona_id={persona_id}")
    assert jobs.status == 200, jobs.body
    assert {j["id"] for j in jobs.json["items"]} == {job_id, videos.json["id"]}
    usage = merchant.call("GET", "/usage")
    assert usage.status == 200, usage.body
