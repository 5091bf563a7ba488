"""The maintenance function's scheduled and direct invocations."""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

import pytest
from genjobs import dependencies
from genjobs.db import Database

import functions.maintenance.app as maintenance_app
from tests.support.events import invoke, load_event
from tests.support.fakes import RecordingInvoker
from tests.support.starts import new_persona, start


@pytest.fixture
def invoker(db: Database) -> Iterator[RecordingInvoker]:
    recording = RecordingInvoker()
    dependencies.override(invoker=recording)
    yield recording
    dependencies.reset()


def test_scheduled_event_runs_every_sweep_and_publishes_counts(db: Database, invoker: RecordingInvoker,
                                                               capsys: pytest.CaptureFixture[str]) -> None:
    # Given one job with an expired lease
    job = start(db, "acme", new_persona(db, "acme")).job
    db.execute("UPDATE generation_jobs SET status = 'processing', attempt = 1, lease_expires_at = %s WHERE id = %s",
               (datetime.now(UTC) - timedelta(minutes=1), job.id))

    # When the schedule fires
    result = invoke(maintenance_app, load_event("maintenance/scheduled.json"))

    # Then it was rescued and re-dispatched, and the counts went out as EMF metrics
    assert result["ok"] is True and result["result"]["rescued"] == 1
    assert invoker.calls == [("genjobs-worker", {"action": "run_job", "job_id": str(job.id)})]
    emf = [json.loads(line) for line in capsys.readouterr().out.splitlines() if line.startswith('{"_aws"')]
    assert emf and emf[-1]["JobsRescued"] == [1.0] and emf[-1]["JobsTimedOut"] == [0.0]
    names = {m["Name"] for d in emf[-1]["_aws"]["CloudWatchMetrics"] for m in d["Metrics"]}
    assert {"JobsRescued", "JobsTimedOut", "JobsRedispatched"} <= names


def test_direct_invoke_runs_one_sweep(db: Database, invoker: RecordingInvoker) -> None:
    result = invoke(maintenance_app, load_event("maintenance/rescue.json"))
    assert result["ok"] is True and result["result"]["rescued"] == 0
    bad = invoke(maintenance_app, {"action": "vacuum_everything"})
    assert bad["ok"] is False and bad["error"]["code"] == "VALIDATION_ERROR"
