"""GET /health through the progress handler, and the migrate function's invocations."""

from __future__ import annotations

import json
import urllib.request
from collections.abc import Iterator
from typing import Any

import pytest
from genjobs import dependencies
from genjobs.db import Database
from genjobs.db.migrations import load_migrations
from genjobs.settings import get_settings

import functions.migrate.app as migrate_app
import functions.progress.app as progress_app
from tests.support.database import make_database, set_database
from tests.support.events import invoke, json_body, load_event
from tests.support.postgres import EmbeddedServerControl


def test_health_reports_database_version_and_no_pending_migrations(db: Database) -> None:
    response = invoke(progress_app, load_event("progress/get_health.json"))
    body = json_body(response)
    assert response["statusCode"] == 200
    assert body["status"] == "ok" and body["database"] == "reachable"
    assert body["server_version"].split(".")[0].isdigit()
    assert body["round_trip_ms"] >= 0
    assert body["applied_migrations"] == len(load_migrations()) and body["pending_migrations"] == []


def test_health_lists_pending_migrations(empty_database_url: str) -> None:
    database = make_database(empty_database_url, pool_min_size=0)
    previous = set_database(database)
    try:
        body = json_body(invoke(progress_app, load_event("progress/get_health.json")))
        assert body["status"] == "degraded"
        assert body["pending_migrations"] == [m.filename for m in load_migrations()]
    finally:
        set_database(previous)
        database.close()


@pytest.fixture
def unmigrated_outage() -> Iterator[tuple[EmbeddedServerControl, Database]]:
    """A dedicated server, nothing migrated, that the test may stop; the handlers use it (one per test)."""
    control = EmbeddedServerControl()
    database = make_database(control.url, connect_timeout_seconds=1.0)
    previous = set_database(database)
    yield control, database
    set_database(previous)
    database.close()
    control.close()


def test_health_is_503_with_retry_after_while_database_is_down(
        unmigrated_outage: tuple[EmbeddedServerControl, Database]) -> None:
    control, _ = unmigrated_outage
    control.stop()
    response = invoke(progress_app, load_event("progress/get_health.json"))
    assert response["statusCode"] == 503
    assert int(response["headers"]["Retry-After"]) > 0
    assert json_body(response)["error"]["code"] == "SERVICE_UNAVAILABLE"
    assert "Traceback" not in response["body"]
    control.start()
    assert invoke(progress_app, load_event("progress/get_health.json"))["statusCode"] == 200


def test_migrate_direct_invoke_applies_then_lists_nothing_pending(empty_database_url: str) -> None:
    database = make_database(empty_database_url, pool_min_size=0)
    previous = set_database(database)
    try:
        pending = invoke(migrate_app, load_event("migrate/pending.json"))
        assert pending == {"ok": True, "result": {"pending": [m.filename for m in load_migrations()]}}
        applied = invoke(migrate_app, load_event("migrate/migrate.json"))
        assert applied["result"]["applied"] == [m.filename for m in load_migrations()]
        assert invoke(migrate_app, load_event("migrate/pending.json"))["result"] == {"pending": []}
        bad = invoke(migrate_app, {"action": "drop_everything"})
        assert bad["ok"] is False and bad["error"]["code"] == "VALIDATION_ERROR"
    finally:
        set_database(previous)
        database.close()


class FakeResponseUrl:
    """Stands in for CloudFormation's pre-signed S3 response URL (the network boundary)."""

    def __init__(self) -> None:
        self.sent: list[dict[str, Any]] = []

    def __call__(self, request: Any, timeout: float) -> Any:
        self.sent.append({"method": request.get_method(), "url": request.full_url,
                          "body": json.loads(request.data)})
        return self

    def __enter__(self) -> FakeResponseUrl:
        return self

    def __exit__(self, *exc: object) -> None:
        return None

    status = 200


@pytest.fixture
def response_url(monkeypatch: pytest.MonkeyPatch) -> FakeResponseUrl:
    fake = FakeResponseUrl()
    monkeypatch.setattr(urllib.request, "urlopen", fake)
    return fake


def test_custom_resource_create_migrates_and_reports_success(empty_database_url: str,
                                                             response_url: FakeResponseUrl) -> None:
    database = make_database(empty_database_url, pool_min_size=0)
    previous = set_database(database)
    try:
        event = load_event("migrate/custom_resource_create.json")
        invoke(migrate_app, event)
        (sent,) = response_url.sent
        assert sent["method"] == "PUT" and sent["url"] == event["ResponseURL"]
        assert sent["body"]["Status"] == "SUCCESS"
        assert sent["body"]["RequestId"] == event["RequestId"]
        assert sent["body"]["Data"]["Applied"].split(",") == [m.filename for m in load_migrations()]
        assert database.fetch_value("SELECT count(*) FROM schema_migrations") == len(load_migrations())

        invoke(migrate_app, {**event, "RequestType": "Delete", "PhysicalResourceId": "genjobs-schema-migrations"})
        assert response_url.sent[-1]["body"]["Status"] == "SUCCESS"
        assert database.fetch_value("SELECT count(*) FROM schema_migrations") == len(load_migrations())
    finally:
        set_database(previous)
        database.close()


def test_custom_resource_reports_failure_when_database_is_down(
        unmigrated_outage: tuple[EmbeddedServerControl, Database], response_url: FakeResponseUrl,
        monkeypatch: pytest.MonkeyPatch) -> None:
    # Given a database that stays down for longer than the (shortened) retry window
    no_retry = get_settings().model_copy(update={"migrate_connect_retry_seconds": 0})
    control, _ = unmigrated_outage
    control.stop()
    with dependencies.overridden(settings=no_retry):
        invoke(migrate_app, load_event("migrate/custom_resource_create.json"))
    (sent,) = response_url.sent
    assert sent["body"]["Status"] == "FAILED" and "database" in sent["body"]["Reason"].lower()
    control.start()


def test_custom_resource_answers_failed_for_any_exception(db: Database, response_url: FakeResponseUrl,
                                                          monkeypatch: pytest.MonkeyPatch) -> None:
    # Given migrations that fail with an error that is not one of the domain's (a bug, a missing file)
    def broken(_: Database) -> list[object]:
        raise RuntimeError("sql/014_x.sql could not be read")

    monkeypatch.setattr(migrate_app, "migrate", broken)

    # When CloudFormation sends the Create
    answer = invoke(migrate_app, load_event("migrate/custom_resource_create.json"))

    # Then CloudFormation still gets its answer at once: FAILED, with the reason (not a one-hour timeout)
    (sent,) = response_url.sent
    assert sent["body"]["Status"] == "FAILED" and answer["Status"] == "FAILED"
    assert sent["body"]["Reason"] == "RuntimeError: sql/014_x.sql could not be read"
    assert sent["body"]["PhysicalResourceId"] == "genjobs-schema-migrations"


def test_custom_resource_waits_for_a_database_that_is_still_coming_up(
        unmigrated_outage: tuple[EmbeddedServerControl, Database], response_url: FakeResponseUrl,
        monkeypatch: pytest.MonkeyPatch) -> None:
    # Given a database that is down when the deploy's custom resource arrives
    control, database = unmigrated_outage
    control.stop()
    waits: list[float] = []

    def database_comes_up_during_the_wait(seconds: float) -> None:
        waits.append(seconds)
        control.start()

    monkeypatch.setattr(migrate_app, "sleep", database_comes_up_during_the_wait)

    # When the migrate function handles the Create
    invoke(migrate_app, load_event("migrate/custom_resource_create.json"))

    # Then it retried once the database was back and reported success with the migrations applied
    assert waits == [2.0]
    (sent,) = response_url.sent
    assert sent["body"]["Status"] == "SUCCESS"
    assert database.fetch_value("SELECT count(*) FROM schema_migrations") == len(load_migrations())


def test_a_rollback_update_answers_success_when_the_database_is_ahead(db: Database, response_url: FakeResponseUrl
                                                                     ) -> None:
    # Given a database with one migration newer than this release (a failed update that is rolled back)
    db.execute("INSERT INTO schema_migrations (version, name, checksum, duration_ms) "
               "VALUES (9999, 'newer_release', 'x', 1)")
    event = load_event("migrate/custom_resource_create.json")
    event.update({"RequestType": "Update", "PhysicalResourceId": "genjobs-schema-migrations",
                  "OldResourceProperties": dict(event["ResourceProperties"])})

    # When CloudFormation's rollback sends the Update with the previous layer
    invoke(migrate_app, event)

    # Then the stack hears SUCCESS, with the reason naming the newer migration
    (sent,) = response_url.sent
    assert sent["body"]["Status"] == "SUCCESS", sent["body"]
    assert sent["body"]["Reason"] == "applied 0 migrations (database ahead: 9999_newer_release)"
