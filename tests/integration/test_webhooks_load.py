"""1,000 events for 50 jobs written by concurrent writers while concurrent delivery workers run: every event
reaches a receiver that de-duplicates by webhook-id, none is lost when a worker is killed mid-batch."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from uuid import UUID

import pytest
from genjobs.adapters.webhooks import HttpSender
from genjobs.data import jobs as job_data
from genjobs.db import Database
from genjobs.models.webhooks import CreateWebhookRequest
from genjobs.services import webhooks

from tests.support.database import make_database
from tests.support.fakes import FrozenClock
from tests.support.scenarios import new_persona, start_job
from tests.support.webhook_worker import BATCH
from tests.support.webhooks import Delivery, Receiver, running_receiver

JOBS = 50
PROGRESS_STEPS = 18  # + job.queued + job.started = 20 events a job, 1,000 in all
WRITERS = 8
WORKERS = 4
ROOT = Path(__file__).resolve().parents[2]


def write_events(db: Database, job_ids: list[UUID], clock: FrozenClock) -> None:
    """Claim each job (job.started) and report its progress 18 times (job.progress each)."""
    for job_id in job_ids:
        claim = job_data.claim_job(db, job_id, clock(), timedelta(minutes=5))
        assert claim is not None
        for step in range(1, PROGRESS_STEPS + 1):
            answer = job_data.report_progress(db, job_id=job_id, merchant_id="acme", attempt=claim.attempt,
                                              step=None, progress=step * 5, now=clock(),
                                              lease=timedelta(minutes=5))
            assert answer.outcome in ("updated", "recorded", "progress"), answer.outcome


@pytest.mark.slow
def test_a_thousand_events_under_concurrency_arrive_once_each_despite_a_killed_worker(
        database_url: str, secret_box: Any) -> None:
    db = make_database(database_url, pool_max_size=WRITERS + WORKERS + 2)
    held = threading.Event()  # the killed worker's first request arrived
    release = threading.Event()

    def answer(delivery: Delivery) -> tuple[int, dict[str, str], bytes]:
        if delivery.headers.get("user-agent", "").startswith("genjobs") and not release.is_set():
            held.set()
            release.wait(30)  # the worker that sent it is killed meanwhile
        return 204, {}, b""

    try:
        with running_receiver(Receiver(answer=answer)) as receiver:
            # Given an endpoint of acme on the receiver, and 50 queued jobs (50 job.queued events)
            clock = FrozenClock(datetime.now(UTC))
            webhooks.create_endpoint(db, secret_box, "acme", CreateWebhookRequest(url=receiver.url),
                                     allow_private=True)
            job_ids = [start_job(db, "acme", new_persona(db, "acme", f"P{i}"), clock=clock,
                                 job_type="character_variations") for i in range(JOBS)]

            # When a delivery worker in its own process claims a batch and is killed while posting it
            worker = subprocess.Popen([sys.executable, "-m", "tests.support.webhook_worker", database_url],
                                      cwd=ROOT, env={**os.environ, "PYTHONPATH": f"{ROOT}/layers/shared:{ROOT}"})
            try:
                assert held.wait(60), "the worker never posted"
            finally:
                worker.send_signal(signal.SIGKILL)
                worker.wait(10)
            release.set()
            leased = db.fetch_value("SELECT count(*) FROM webhook_messages WHERE status = 'pending' "
                                    "AND attempts = 1 AND next_attempt_at > now()")

            # And 8 writers add 950 more events while 4 workers deliver, until the writers are done and no
            # message is pending (the killed worker's batch comes due again when its 2 s lease is over)
            writing = threading.Event()
            writing.set()
            deadline = time.monotonic() + 120

            def work() -> int:
                delivered = 0
                while time.monotonic() < deadline:
                    still_writing = writing.is_set()
                    run = webhooks.deliver_due(db, secret_box, lambda: datetime.now(UTC),
                                               sender=HttpSender(allow_private=True), batch=BATCH,
                                               lease=timedelta(seconds=30), parallel=4)
                    delivered += run.delivered
                    if not still_writing and run.claimed == 0 and not db.fetch_value(
                            "SELECT count(*) FROM webhook_messages WHERE status = 'pending'"):
                        return delivered
                raise AssertionError("messages still pending after 120 s")

            with ThreadPoolExecutor(WRITERS + WORKERS) as pool:
                workers = [pool.submit(work) for _ in range(WORKERS)]
                slices = [job_ids[i::WRITERS] for i in range(WRITERS)]
                writers = [pool.submit(write_events, db, s, clock) for s in slices]
                for writer in writers:
                    writer.result()
                writing.clear()
                delivered_by_workers = sum(w.result() for w in workers)

            # Then every one of the 1,000 events reached the receiver, each under its own webhook-id; the only
            # repeats are requests of the killed worker's batch; every message is recorded delivered
            unique = receiver.unique()
            messages = {str(r["id"]): r for r in db.fetch_all("SELECT id, status, job_id, job_version "
                                                                "FROM webhook_messages")}
            assert len(messages) == JOBS * (PROGRESS_STEPS + 2) == 1000
            missing = set(messages) - set(unique)
            assert not missing, db.fetch_all("SELECT m.status, m.event_type, m.attempts, a.* FROM webhook_messages m "
                                             "LEFT JOIN webhook_attempts a ON a.message_id = m.id "
                                             "WHERE m.id = ANY(%s::uuid[])", (list(missing),))
            assert set(unique) == set(messages)
            assert all(m["status"] == "delivered" for m in messages.values())
            assert delivered_by_workers == 1000
            assert leased == BATCH
            repeats = len(receiver.deliveries) - len(unique)
            assert 1 <= repeats <= BATCH  # the killed worker posted its first request before it died
            # and each job's events carry its versions, one event per version change
            versions: dict[str, set[int]] = {}
            for delivery in unique.values():
                job = delivery.json()["data"]["job"]
                versions.setdefault(job["id"], set()).add(job["version"])
            assert all(len(v) == PROGRESS_STEPS + 2 for v in versions.values())
    finally:
        db.close()
