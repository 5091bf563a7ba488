"""The worker is its own function: `run_job` through functions/worker/app.py; the generation function, HTTP-only
now, refuses it (issue 13: the 900 s worker no longer shares the API's function and concurrency)."""

from __future__ import annotations

from pathlib import Path

from genjobs import dependencies
from genjobs.db import Database

import functions.generation.app as generation_app
import functions.worker.app as worker_app
from local_runner.media import LocalMediaProvider, LocalMediaStore
from tests.support.events import invoke, load_event
from tests.support.fakes import FrozenClock
from tests.support.scenarios import new_persona, start_job


def test_the_worker_function_runs_a_job_from_its_sample_event(db: Database, tmp_path: Path) -> None:
    # Given a queued job and local media
    store = LocalMediaStore(tmp_path, bucket="genjobs-media-local", base_url="http://media.test")
    job_id = start_job(db, "acme", new_persona(db, "acme"), clock=FrozenClock(), job_type="character_variations",
                       count=2)
    event = {**load_event("worker/run_job.json"), "job_id": str(job_id)}

    # When the worker function gets the direct invoke
    with dependencies.overridden(store=store, provider=LocalMediaProvider(store)):
        answer = invoke(worker_app, event)

    # Then it ran the job to completion
    assert answer["ok"] is True and answer["result"]["status"] == "completed", answer
    assert db.fetch_value("SELECT status FROM generation_jobs WHERE id = %s", (job_id,)) == "completed"


def test_the_generation_function_no_longer_takes_run_job(db: Database) -> None:
    answer = invoke(generation_app, load_event("worker/run_job.json"))
    assert answer["ok"] is False and answer["error"]["code"] == "UNSUPPORTED_EVENT", answer
