"""The merchant side of the control surface through the handlers: personas listed (keyset) and changed, an
idempotent persona create, job outputs and model on every read, job lists by several statuses and a time
range, the daily usage history and the ledger. Each read is one statement (the statement recorder)."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import timedelta
from decimal import Decimal
from uuid import UUID

import pytest
from genjobs import dependencies
from genjobs.data import jobs as job_data
from genjobs.db import Database, record_statements
from genjobs.services import jobs, limits

from local_runner.media import LocalMediaStore
from tests.support.fakes import FrozenClock
from tests.support.merchants import MerchantClient
from tests.support.scenarios import new_persona, persona_with_variations, start_job


@pytest.fixture
def clock(db: Database) -> Iterator[FrozenClock]:
    """The handlers' clock, frozen (2026-11-26 12:00 UTC)."""
    frozen = FrozenClock()
    with dependencies.overridden(clock=frozen):
        yield frozen


def ids(page: dict[str, object]) -> list[str]:
    items = page["items"]
    assert isinstance(items, list)
    return [item["id"] for item in items]


# -- personas -------------------------------------------------------------------------------------------


def test_persona_list_is_one_statement_newest_first_and_stable_while_personas_are_created(
        acme: MerchantClient, globex: MerchantClient) -> None:
    # Given five personas of acme (and one of globex)
    created = [acme.create_persona(name=f"P{i}")[1]["id"] for i in range(5)]
    globex.create_persona(name="Other")

    # When acme pages through them two at a time, creating a persona between the pages
    with record_statements() as first_read:
        status, first, _ = acme.list_personas(limit="2")
    acme.create_persona(name="Newcomer")
    _, second, _ = acme.list_personas(limit="2", cursor=first["next_cursor"])
    acme.create_persona(name="Latecomer")
    _, third, _ = acme.list_personas(limit="2", cursor=second["next_cursor"])

    # Then one statement per page; the pages hold exactly the five, newest first, no duplicate, no gap
    assert status == 200 and first_read.count == 1, first_read.statements
    assert ids(first) + ids(second) + ids(third) == list(reversed(created))
    assert third["next_cursor"] is None
    assert all("regeneration_available_at" in p for p in first["items"])


def test_persona_list_filters_by_status_and_refuses_bad_input(acme: MerchantClient, db: Database) -> None:
    draft = acme.create_persona(name="Draft")[1]["id"]
    active = acme.create_persona(name="Active")[1]["id"]
    db.execute("UPDATE personas SET status = 'active' WHERE id = %s", (active,))

    assert ids(acme.list_personas(status="active")[1]) == [active]
    assert ids(acme.list_personas(status="draft")[1]) == [draft]
    assert acme.list_personas(status="deleted")[0] == 422
    assert acme.list_personas(limit="101")[0] == 422
    assert acme.list_personas(cursor="not-a-cursor")[0] == 400
    # a cursor of another filter is refused rather than mis-positioned
    acme.create_persona(name="Third")
    cursor = acme.list_personas(limit="1")[1]["next_cursor"]
    assert acme.list_personas(limit="1", status="draft", cursor=cursor)[0] == 400


def test_persona_and_ledger_cursors_are_bound_to_their_merchant(acme: MerchantClient, globex: MerchantClient,
                                                                db: Database) -> None:
    # Given a page cursor of acme's personas and one of acme's ledger
    for name in ("A", "B"):
        acme.create_persona(name=name)
        globex.create_persona(name=name)
    persona_cursor = acme.list_personas(limit="1")[1]["next_cursor"]
    for key in ("k1", "k2"):
        db.execute("INSERT INTO usage_ledger (merchant_id, usage_key, billing_period, amount_usd) "
                   "VALUES (%s, %s, date_trunc('month', now())::date, 1)", ("acme", key))
    ledger_cursor = acme.usage_ledger(limit="1")[1]["next_cursor"]
    assert persona_cursor and ledger_cursor

    # Then globex cannot page with them (the tag covers the merchant), while acme can
    assert globex.list_personas(limit="1", cursor=persona_cursor)[0] == 400
    assert globex.usage_ledger(limit="1", cursor=ledger_cursor)[0] == 400
    assert acme.list_personas(limit="1", cursor=persona_cursor)[0] == 200
    assert acme.usage_ledger(limit="1", cursor=ledger_cursor)[0] == 200


def test_a_deleted_persona_leaves_the_list(acme: MerchantClient) -> None:
    gone = acme.create_persona(name="Gone")[1]["id"]
    kept = acme.create_persona(name="Kept")[1]["id"]
    assert acme.delete_persona(gone)[0] == 204
    assert ids(acme.list_personas()[1]) == [kept]


def test_patch_changes_named_fields_validated_like_create(acme: MerchantClient) -> None:
    # Given a persona
    persona = acme.create_persona(name="Pip", description="old", product_name="SnackBot")[1]

    # When its name changes and its description is cleared (one statement)
    with record_statements() as recorder:
        status, changed, _ = acme.update_persona(persona["id"], {"name": "  Pip II ", "description": None})

    # Then only those fields changed, with a new version
    assert status == 200 and recorder.count == 1, recorder.statements
    assert (changed["name"], changed["description"], changed["product_name"]) == ("Pip II", None, "SnackBot")
    assert changed["version"] == persona["version"] + 1
    assert acme.get_persona(persona["id"])[1]["name"] == "Pip II"
    # validation as on create
    for body in ({}, {"name": None}, {"name": ""}, {"name": "x" * 201}, {"character_type": "y" * 101},
                 {"status": "active"}, {"name": "a\u0000b"}):
        assert acme.update_persona(persona["id"], body)[0] == 422, body
    assert acme.update_persona(persona["id"], "not an object")[0] == 422


def test_patch_of_another_merchants_or_a_deleted_persona_is_404(acme: MerchantClient,
                                                                 globex: MerchantClient) -> None:
    theirs = globex.create_persona(name="Theirs")[1]["id"]
    gone = acme.create_persona(name="Gone")[1]["id"]
    acme.delete_persona(gone)

    assert acme.update_persona(theirs, {"name": "Mine now"})[0] == 404
    assert acme.update_persona(gone, {"name": "Back"})[0] == 404
    assert acme.update_persona(str(UUID(int=5)), {"name": "Nobody"})[0] == 404
    assert globex.get_persona(theirs)[1]["name"] == "Theirs"


def test_a_retried_create_with_the_same_idempotency_key_is_not_a_second_persona(acme: MerchantClient,
                                                                                globex: MerchantClient,
                                                                                db: Database) -> None:
    # When the same create is sent twice with one key (a client retrying a lost answer)
    first_status, first, _ = acme.create_persona(name="Remy", key="create-remy-1")
    again_status, again, headers = acme.create_persona(name="Remy", key="create-remy-1")

    # Then the second answers the first persona (200, replayed), and there is one persona
    assert (first_status, again_status) == (201, 200)
    assert again["id"] == first["id"] and headers["Idempotent-Replayed"] == "true"
    assert db.fetch_value("SELECT count(*) FROM personas WHERE merchant_id = 'acme'") == 1
    # another body with that key is a conflict; another merchant's key space is its own
    assert acme.create_persona(name="Other", key="create-remy-1")[0] == 409
    assert globex.create_persona(name="Remy", key="create-remy-1")[0] == 201
    # once deleted, the replay is 404 (the persona is gone everywhere)
    acme.delete_persona(first["id"])
    assert acme.create_persona(name="Remy", key="create-remy-1")[0] == 404
    assert acme.create_persona(name="Remy", key=" ")[0] == 400


# -- job reads: outputs, model, filters -----------------------------------------------------------------


def test_every_job_read_carries_outputs_and_model_in_one_statement(acme: MerchantClient, db: Database,
                                                                    handler_store: LocalMediaStore) -> None:
    # Given a completed variations job with three stored images
    _, job_id, _ = persona_with_variations(db, "acme", handler_store, clock=FrozenClock())

    # When it is read alone and in the list
    with record_statements() as single:
        _, job, _ = acme.get_job(job_id)
    with record_statements() as listing:
        _, page, _ = acme.list_jobs()

    # Then both show the model and every output with its facts, one statement each
    assert single.count == 1 and listing.count == 1
    assert job["model_id"] == db.fetch_value(
        "SELECT model_id FROM model_configurations WHERE is_default AND media_type = 'image'")
    assert [o["kind"] for o in job["outputs"]] == ["image"] * 3
    stored = db.fetch_all("SELECT url, width, height, size_bytes FROM media_outputs WHERE job_id = %s ORDER BY url",
                          (job_id,))
    assert sorted((o["url"], o["width"], o["height"], o["size_bytes"]) for o in job["outputs"]) == \
        [(r["url"], r["width"], r["height"], r["size_bytes"]) for r in stored]
    assert all(o["content_type"] == "image/png" and o["width"] > 0 for o in job["outputs"])
    assert all(o["url"] in job["variation_urls"] and o["size_bytes"] > 0 for o in job["outputs"])
    assert page["items"][0]["outputs"] == job["outputs"]


def test_jobs_filter_by_several_statuses_and_a_creation_range(acme: MerchantClient, globex: MerchantClient,
                                                              db: Database) -> None:
    # Given acme's jobs created an hour apart: one canceled, one failed, one queued (and globex's canceled one)
    clock = FrozenClock()
    created = []
    for _ in range(3):
        created.append(start_job(db, "acme", new_persona(db, "acme"), clock=clock, job_type="character_variations"))
        clock.advance(timedelta(hours=1))
    canceled, failed, queued = created
    jobs.cancel_job(db, "acme", canceled, clock=clock)
    job_data.fail_job(db, job_id=failed, retryable=False, error_code="PROVIDER_FAILED", error_message="no",
                      retry_at=None, now=clock())
    theirs = start_job(db, "globex", new_persona(db, "globex"), clock=clock, job_type="character_variations")
    jobs.cancel_job(db, "globex", theirs, clock=clock)

    # When acme lists failed and canceled jobs, and jobs of a time range
    with record_statements() as recorder:
        status, stopped, _ = acme.list_jobs(status="failed,canceled")
    start = FrozenClock().now
    _, ranged, _ = acme.list_jobs(created_after=(start + timedelta(minutes=30)).isoformat(),
                                  created_before=(start + timedelta(minutes=150)).isoformat())

    # Then each answer holds exactly acme's matching jobs, newest first, in one statement
    assert status == 200 and recorder.count == 1
    assert ids(stopped) == [str(failed), str(canceled)]
    assert ids(ranged) == [str(queued), str(failed)]
    assert ids(acme.list_jobs(status="queued")[1]) == [str(queued)]
    for bad in ({"status": "failed,finished"}, {"status": ""}, {"created_after": "yesterday"},
                {"created_after": "2026-11-26T12:00:00"},
                {"created_after": "2026-11-27T00:00:00Z", "created_before": "2026-11-26T00:00:00Z"}):
        assert acme.list_jobs(**bad)[0] == 422, bad
    # a cursor belongs to its filters
    cursor = acme.list_jobs(status="failed,canceled", limit="1")[1]["next_cursor"]
    assert ids(acme.list_jobs(status="failed,canceled", limit="1", cursor=cursor)[1]) == [str(canceled)]
    assert acme.list_jobs(status="failed", limit="1", cursor=cursor)[0] == 400


# -- usage history --------------------------------------------------------------------------------------


def test_daily_usage_counts_jobs_and_costs_per_day_in_one_statement(acme: MerchantClient, globex: MerchantClient,
                                                                   db: Database, clock: FrozenClock) -> None:
    # Given acme jobs two days ago (one canceled) and today (one failed), and ledger costs on both days
    two_days_ago = FrozenClock(clock.now - timedelta(days=2))
    old = start_job(db, "acme", new_persona(db, "acme"), clock=two_days_ago, job_type="character_variations")
    start_job(db, "acme", new_persona(db, "acme"), clock=two_days_ago, job_type="character_variations")
    jobs.cancel_job(db, "acme", old, clock=two_days_ago)
    today = start_job(db, "acme", new_persona(db, "acme"), clock=clock, job_type="character_variations")
    job_data.fail_job(db, job_id=today, retryable=False, error_code="X", error_message="no", retry_at=None,
                      now=clock())
    limits.record_usage(db, "acme", usage_key="manual-1", amount_usd=Decimal("1.5"), clock=two_days_ago)
    limits.record_usage(db, "acme", usage_key="manual-2", amount_usd=Decimal("0.25"), clock=clock)
    limits.record_usage(db, "globex", usage_key="theirs", amount_usd=Decimal("9"), clock=clock)

    # When acme asks for the last 3 days
    with record_statements() as recorder:
        status, report, _ = acme.usage_daily(days="3")

    # Then three days, oldest first, each with its counts and cost, and nothing of globex
    assert status == 200 and recorder.count == 1, recorder.statements
    assert [d["day"] for d in report["items"]] == ["2026-11-24", "2026-11-25", "2026-11-26"]
    counts = [(d["created"], d["completed"], d["failed"], d["canceled"], d["cost_usd"]) for d in report["items"]]
    assert counts == [(2, 0, 0, 1, 1.5), (0, 0, 0, 0, 0.0), (1, 0, 1, 0, 0.25)]
    assert len(acme.usage_daily()[1]["items"]) == 30
    for bad in ("0", "91", "x"):
        assert acme.usage_daily(days=bad)[0] == 422


def test_the_ledger_pages_newest_first_stable_while_costs_are_recorded(acme: MerchantClient, globex: MerchantClient,
                                                                       db: Database, clock: FrozenClock) -> None:
    # Given five cost entries of acme, a minute apart (and one of globex)
    for i in range(5):
        limits.record_usage(db, "acme", usage_key=f"u{i}", amount_usd=Decimal(i), clock=clock)
        clock.advance(timedelta(minutes=1))
    limits.record_usage(db, "globex", usage_key="theirs", amount_usd=Decimal(1), clock=clock)

    # When acme pages two at a time while new costs are recorded
    with record_statements() as recorder:
        _, first, _ = acme.usage_ledger(limit="2")
    limits.record_usage(db, "acme", usage_key="new-1", amount_usd=Decimal(7), clock=clock)
    _, second, _ = acme.usage_ledger(limit="2", cursor=first["next_cursor"])
    limits.record_usage(db, "acme", usage_key="new-2", amount_usd=Decimal(8), clock=clock)
    _, third, _ = acme.usage_ledger(limit="2", cursor=second["next_cursor"])

    # Then one statement per page, and exactly the five entries, newest first
    assert recorder.count == 1
    keys = [e["usage_key"] for page in (first, second, third) for e in page["items"]]
    assert keys == ["u4", "u3", "u2", "u1", "u0"] and third["next_cursor"] is None
    assert acme.usage_ledger(cursor="x")[0] == 400
    assert acme.usage_ledger(limit="0")[0] == 422
