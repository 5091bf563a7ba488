"""The model registry on a real PostgreSQL: each family's price in a job's estimate and final cost (the cost
rules of sql/013 at the row's price), the choice of a model at start, and the daily lifecycle check with
GetFoundationModel stubbed (botocore Stubber) through Active -> Legacy -> EOL."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

import boto3
import pytest
from botocore.stub import Stubber
from genjobs.adapters.bedrock_catalog import BedrockModelCatalog
from genjobs.data import jobs as job_data
from genjobs.db import Database
from genjobs.errors import ValidationFailed
from genjobs.services import models

from tests.support.fakes import FrozenClock
from tests.support.starts import new_persona, start


def set_model(db: Database, model_id: str, **columns: Any) -> None:
    for column, value in columns.items():
        assert column in ("enabled", "lifecycle", "is_default")
        db.execute(f"UPDATE model_configurations SET {column} = %s WHERE model_id = %s", (value, model_id))


@pytest.mark.parametrize(("model_id", "price"), [
    ("stability.stable-image-core-v1:1", Decimal("0.04")),
    ("stability.stable-image-ultra-v1:1", Decimal("0.14")),
    ("stability.sd3-5-large-v1:0", Decimal("0.08")),
    ("amazon.titan-image-generator-v2:0", Decimal("0.01")),
])
def test_image_job_estimate_and_cost_are_images_times_the_models_price(db: Database, model_id: str,
                                                                       price: Decimal) -> None:
    # Given an enabled image model of each family (Titan is eol since 2026-06-30: lifted for the arithmetic)
    set_model(db, model_id, enabled=True, lifecycle="active")
    clock = FrozenClock()
    persona = new_persona(db, "acme")
    # When a 3-variation job is started on it and its three images are recorded
    job = start(db, "acme", persona, clock=clock, model=model_id).job
    assert job.model_id == model_id and Decimal(str(job.estimated_cost_usd)) == 3 * price
    claim = job_data.claim_job(db, job.id, clock(), timedelta(minutes=5))
    assert claim is not None and claim.model_id == model_id
    for index in range(3):
        assert job_data.record_variation(
            db, job_id=job.id, attempt=1, index=index, seed=index, bucket="b", key=f"k{index}", url=f"u{index}",
            content_type="image/png", size_bytes=1, width=1, height=1, progress=33 * (index + 1), step="s",
            lease_until=clock() + timedelta(minutes=5), prompt="p")
    done = job_data.complete_job(db, job_id=job.id, attempt=1, expected=("processing",), now=clock())
    # Then its cost is 3 images at the model's price
    assert Decimal(str(done.as_job().cost_usd)) == 3 * price


@pytest.mark.parametrize(("model_id", "seconds", "price"), [
    ("luma.ray-v2:0", 5, Decimal("1.50")),  # per second at 720p
    ("amazon.nova-reel-v1:1", 6, Decimal("0.08")),  # per second at 720p (an eol row, lifted for the arithmetic)
])
def test_video_job_cost_is_states_times_seconds_times_the_price_at_its_resolution(
        db: Database, model_id: str, seconds: int, price: Decimal) -> None:
    set_model(db, model_id, enabled=True, lifecycle="active")
    clock = FrozenClock()
    persona = new_persona(db, "acme", status="active")
    job = start(db, "acme", persona, clock=clock, job_type="state_videos", states=["idle", "talking"],
                model=model_id).job
    assert Decimal(str(job.estimated_cost_usd)) == 2 * seconds * price
    row = db.fetch_one("SELECT price_resolution, default_parameters FROM model_configurations WHERE model_id = %s",
                       (model_id,))
    assert row is not None and row["price_resolution"] == "720p"
    assert row["default_parameters"]["durationSeconds"] == seconds


def test_the_seeded_registry_cites_a_source_for_every_lifecycle_and_defaults_only_active_models(
        db: Database) -> None:
    # Given the registry as the migrations leave it (040, 092)
    rows = {r["model_id"]: r for r in db.fetch_all(
        "SELECT model_id, media_type, family, enabled, is_default, lifecycle, lifecycle_eol_at, lifecycle_source "
        "FROM model_configurations")}
    # Then the Amazon models are eol on the dates AWS's lifecycle pages give, disabled and not defaults
    for model_id, eol in (("amazon.nova-canvas-v1:0", "2026-09-30"), ("amazon.nova-reel-v1:1", "2026-09-30"),
                          ("amazon.titan-image-generator-v2:0", "2026-06-30")):
        row = rows[model_id]
        assert row["lifecycle"] == "eol" and row["lifecycle_eol_at"].date().isoformat() == eol
        assert not row["enabled"] and not row["is_default"]
    # and one default per kind, each active per the model card cited beside it
    defaults = {r["media_type"]: r for r in rows.values() if r["is_default"]}
    assert {k: r["model_id"] for k, r in defaults.items()} == {
        "image": "stability.stable-image-core-v1:1", "video": "luma.ray-v2:0"}
    for row in defaults.values():
        assert row["lifecycle"] == "active" and row["enabled"]
        assert "docs.aws.amazon.com/bedrock/latest/userguide/model-card-" in row["lifecycle_source"]
    # and every row says where its lifecycle was read
    assert all(r["lifecycle_source"] and "https://docs.aws.amazon.com/" in r["lifecycle_source"]
               for r in rows.values())
    # and the families the adapters serve: three image families, two video families
    assert {r["family"] for r in rows.values() if r["media_type"] == "image"} == {
        "stability_image", "nova_canvas", "titan_image"}
    assert {r["family"] for r in rows.values() if r["media_type"] == "video"} == {"luma_ray", "nova_reel"}


def test_a_start_refuses_unknown_disabled_wrong_kind_and_eol_models_naming_the_allowed_ones(db: Database) -> None:
    persona = new_persona(db, "acme")
    allowed = ["stability.stable-image-core-v1:1", "stability.sd3-5-large-v1:0", "stability.stable-image-ultra-v1:1"]
    cases = {"no.such-model:0": "unknown", "amazon.titan-image-generator-v2:0": "disabled",
             "luma.ray-v2:0": "wrong_kind"}
    for model_id, reason in cases.items():
        with pytest.raises(ValidationFailed) as info:
            start(db, "acme", persona, model=model_id)
        assert info.value.details == {"model": model_id, "reason": reason, "kind": "image", "allowed": allowed}
        assert model_id in info.value.message and allowed[0] in info.value.message
    # an enabled model the lifecycle check found eol
    set_model(db, "stability.stable-image-ultra-v1:1", lifecycle="eol")
    with pytest.raises(ValidationFailed) as info:
        start(db, "acme", persona, model="stability.stable-image-ultra-v1:1")
    assert info.value.details["reason"] == "eol"
    assert info.value.details["allowed"] == ["stability.stable-image-core-v1:1", "stability.sd3-5-large-v1:0"]
    # and nothing was queued
    assert db.fetch_value("SELECT count(*) FROM generation_jobs") == 0


def test_the_default_model_going_eol_refuses_starts_without_switching_models(db: Database) -> None:
    persona = new_persona(db, "acme")
    set_model(db, "stability.stable-image-core-v1:1", lifecycle="eol")
    with pytest.raises(ValidationFailed) as info:
        start(db, "acme", persona)
    assert info.value.details["model"] == "stability.stable-image-core-v1:1" and info.value.details["reason"] == "eol"
    assert db.fetch_value("SELECT model_id FROM model_configurations WHERE is_default AND media_type = 'image'") == \
        "stability.stable-image-core-v1:1"


def lifecycle_answer(model_id: str, status: str, eol: datetime | None = None) -> dict[str, Any]:
    lifecycle: dict[str, Any] = {"status": status, "startOfLifeTime": datetime(2025, 1, 23, tzinfo=UTC)}
    if status == "LEGACY":
        lifecycle["legacyTime"] = datetime(2026, 12, 1, tzinfo=UTC)
    if eol is not None:
        lifecycle["endOfLifeTime"] = eol
    return {"modelDetails": {
        "modelArn": f"arn:aws:bedrock:us-west-2::foundation-model/{model_id}", "modelId": model_id,
        "modelName": model_id, "providerName": "test", "inputModalities": ["TEXT"], "outputModalities": ["IMAGE"],
        "modelLifecycle": lifecycle}}


def test_lifecycle_check_active_legacy_eol_with_get_foundation_model(db: Database,
                                                                     caplog: pytest.LogCaptureFixture) -> None:
    # Given the four enabled seeded models and Bedrock's control plane stubbed
    client = boto3.client("bedrock", region_name="us-west-2")
    catalog = BedrockModelCatalog(client)
    enabled = [r["model_id"] for r in db.fetch_all("SELECT model_id FROM model_configurations WHERE enabled "
                                                   "ORDER BY model_id")]
    assert enabled == ["luma.ray-v2:0", "stability.sd3-5-large-v1:0", "stability.stable-image-core-v1:1",
                       "stability.stable-image-ultra-v1:1"]
    clock = FrozenClock(datetime(2026, 12, 2, tzinfo=UTC))
    eol = datetime(2027, 6, 1, tzinfo=UTC)
    with Stubber(client) as stubber:
        def expect(model_id: str, status: str, end: datetime | None = None) -> None:
            stubber.add_response("get_foundation_model", lifecycle_answer(model_id, status, end),
                                 {"modelIdentifier": model_id})

        # When day 1: all Active
        for model_id in enabled:
            expect(model_id, "ACTIVE")
        day1 = models.check_lifecycles(db, catalog, clock=clock)
        # day 2: Stable Image Core (the default) goes Legacy with an EOL date
        clock.advance(timedelta(days=1))
        for model_id in enabled:
            expect(model_id, "LEGACY" if model_id == "stability.stable-image-core-v1:1" else "ACTIVE",
                   eol if model_id == "stability.stable-image-core-v1:1" else None)
        day2 = models.check_lifecycles(db, catalog, clock=clock)
        # past its EOL date: still LEGACY with endOfLifeTime passed; SD3.5 Large is gone from Bedrock
        clock.now = eol + timedelta(days=1)
        for model_id in enabled:
            if model_id == "stability.sd3-5-large-v1:0":
                stubber.add_client_error("get_foundation_model", service_error_code="ResourceNotFoundException",
                                         service_message="Model not found", http_status_code=404,
                                         expected_params={"modelIdentifier": model_id})
            else:
                expect(model_id, "LEGACY" if model_id == "stability.stable-image-core-v1:1" else "ACTIVE",
                       eol if model_id == "stability.stable-image-core-v1:1" else None)
        day3 = models.check_lifecycles(db, catalog, clock=clock)
        stubber.assert_no_pending_responses()

    # Then each day recorded what Bedrock said, counted legacy/eol, and logged the EOL date
    assert (day1.checked, day1.legacy, day1.eol) == (4, [], [])
    assert {c.model_id for c in day1.changes} == set()  # the seed already said active
    assert (day2.legacy, day2.eol) == (["stability.stable-image-core-v1:1"], [])
    assert [(c.model_id, c.before, c.after, c.eol_at) for c in day2.changes] == [
        ("stability.stable-image-core-v1:1", "active", "legacy", eol)]
    assert sorted(day3.eol) == ["stability.sd3-5-large-v1:0", "stability.stable-image-core-v1:1"]
    assert "2027-06-01" in caplog.text
    rows = {r["model_id"]: r for r in db.fetch_all(
        "SELECT model_id, lifecycle, lifecycle_checked_at, lifecycle_eol_at, enabled, is_default "
        "FROM model_configurations WHERE model_id = ANY(%s)", (enabled,))}
    assert rows["stability.stable-image-core-v1:1"]["lifecycle"] == "eol"
    assert rows["stability.stable-image-core-v1:1"]["lifecycle_eol_at"] == eol
    assert rows["luma.ray-v2:0"]["lifecycle"] == "active" and rows["luma.ray-v2:0"]["lifecycle_checked_at"] == clock()
    # and no merchant's model was switched: enabled and defaults are as they were
    assert all(r["enabled"] for r in rows.values()) and rows["stability.stable-image-core-v1:1"]["is_default"]
