"""Part 7 — webhooks: the hot-path cost of the outbox for a merchant without endpoints, the delivery latency
after commit, and events/s per delivery worker.

* Hot path (interleaved, shuffled each iteration): the same job write (`genjobs_report_progress_v2`, a step
  change) on two clones of the schema — "before": the webhook triggers dropped and the statement as it was
  (`SELECT genjobs_report_progress_v2(...)`), i.e. the code before webhooks; "after": the triggers and the
  writer's statement that also reads the outbox flag — for a merchant without endpoints. Statements per write
  are counted with the layer's recorder. Target: the same statements, <= 5 % latency.
* Latency after commit: a merchant with one endpoint on a local receiver (127.0.0.1); each write that
  reports pending events hands `deliver_due` to a worker thread (as the entry's asynchronous invoke does);
  the time from the write's return (commit) to the receiver getting the request, one event at a time.
* Throughput: 2,000 due events, one delivery worker (`deliver_due` as the webhooks function runs it: batches
  of 50, 16 posted at once; and one at a time), to the local receiver.
"""

from __future__ import annotations

import random
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime, timedelta
from typing import Any
from uuid import UUID

from genjobs.adapters.webhooks import FernetSecretBox, HttpSender
from genjobs.data import jobs as job_data
from genjobs.data.answers import JobAnswer, transitions_checked
from genjobs.db import Database, record_statements
from genjobs.db.outbox import take_webhooks_pending
from genjobs.models.webhooks import CreateWebhookRequest
from genjobs.services import webhooks

from bench.common import BenchServer, Report, fmt_ratio, median, percentile, ratio
from bench.harness import layer_database
from tests.support.webhooks import KEY, Delivery, Receiver, running_receiver

LEASE = timedelta(minutes=5)
WARMUP = 200
ITERATIONS = 3000
LATENCY_EVENTS = 300
THROUGHPUT_EVENTS = 2000


def _running_job(db: Database, merchant: str) -> UUID:
    db.execute("INSERT INTO merchants (id, hourly_generation_limit) VALUES (%s, 100000) ON CONFLICT DO NOTHING",
               (merchant,))
    persona = db.fetch_value("INSERT INTO personas (merchant_id, name) VALUES (%s, 'Bench') RETURNING id", (merchant,))
    job: UUID = db.fetch_value(
        "INSERT INTO generation_jobs (merchant_id, persona_id, job_type, status, attempt, variation_count, model_id) "
        "VALUES (%s, %s, 'character_variations', 'processing', 1, 1, 'amazon.nova-canvas-v1:0') RETURNING id",
        (merchant, persona))
    return job


def _write_before(db: Database, job_id: UUID, merchant: str, step: str) -> Any:
    """The write as the data layer sent it before webhooks: the same call, answer and validation."""
    with transitions_checked(job_id):
        return JobAnswer.model_validate(db.fetch_value(
            "SELECT genjobs_report_progress_v2(%s, %s, %s, %s, %s, %s, %s)",
            (job_id, merchant, 1, step, None, datetime.now(UTC), LEASE)))


def _write_after(db: Database, job_id: UUID, merchant: str, step: str) -> Any:
    return job_data.report_progress(db, job_id=job_id, merchant_id=merchant, attempt=1, step=step, progress=None,
                                    now=datetime.now(UTC), lease=LEASE)


def hot_path(report: Report, server: BenchServer) -> None:
    before_url, after_url = server.new_database("webhooks_before"), server.new_database("webhooks_after")
    before, after = layer_database(before_url), layer_database(after_url)
    try:
        before.execute("DROP TRIGGER generation_jobs_webhooks ON generation_jobs")
        before.execute("DROP TRIGGER media_outputs_webhooks ON media_outputs")
        jobs = {"before": _running_job(before, "plain"), "after": _running_job(after, "plain")}
        # another merchant of the "after" clone has endpoints: the probe must tell them apart
        after.execute("INSERT INTO merchants (id) VALUES ('hooked')")
        after.execute("INSERT INTO webhook_endpoints (merchant_id, url, secret_encrypted) "
                      "VALUES ('hooked', 'https://hooks.example.com/', 'x')")
        write = {"before": lambda i: _write_before(before, jobs["before"], "plain", f"s{i % 2}"),
                 "after": lambda i: _write_after(after, jobs["after"], "plain", f"s{i % 2}")}
        statements = {}
        for name in ("before", "after"):
            with record_statements() as recorder:
                write[name](1)
            statements[name] = recorder.count
        timings: dict[str, list[float]] = {"before": [], "after": []}
        names = list(timings)
        for i in range(WARMUP + ITERATIONS):
            random.shuffle(names)
            for name in names:
                started = time.perf_counter()
                write[name](i)
                elapsed = (time.perf_counter() - started) * 1000.0
                if i >= WARMUP:
                    timings[name].append(elapsed)
        take_webhooks_pending()
        messages = after.fetch_value("SELECT count(*) FROM webhook_messages")
        med = {n: median(t) for n, t in timings.items()}
        p99 = {n: percentile(t, 99) for n, t in timings.items()}
        report.heading("Webhooks — hot-path overhead for a merchant without endpoints")
        report.say(f"{ITERATIONS} writes each (genjobs_report_progress_v2, a step change), interleaved in shuffled "
                   f"order after {WARMUP} warm-up rounds; one pooled connection per clone.")
        report.say("")
        report.table(["variant", "statements / write", "median ms", "p99 ms"],
                     [[n, statements[n], f"{med[n]:.3f}", f"{p99[n]:.3f}"] for n in ("before", "after")])
        overhead = ratio(med["after"], med["before"])
        report.say("")
        verdict = "ok" if statements["after"] == statements["before"] and overhead <= 1.05 else "**MISS**"
        report.say(f"Median after/before: {fmt_ratio(overhead)} (target <= 1.05x, same statements): {verdict}. "
                   f"Outbox rows written for the merchant without endpoints: {messages}.")
    finally:
        before.close()
        after.close()
        server.drop(before_url)
        server.drop(after_url)


def delivery(report: Report, server: BenchServer) -> None:
    url = server.new_database("webhooks_delivery")
    writer = layer_database(url)
    worker_db = Database(writer.settings.model_copy(update={"pool_max_size": 2}))
    box = FernetSecretBox(KEY)
    arrived: dict[str, float] = {}
    lock = threading.Condition()

    def answer(delivery: Delivery) -> tuple[int, dict[str, str], bytes]:
        with lock:
            arrived[delivery.webhook_id] = time.perf_counter()
            lock.notify_all()
        return 204, {}, b""

    def deliver(parallel: int) -> Any:
        return webhooks.deliver_due(worker_db, box, lambda: datetime.now(UTC),
                                    sender=HttpSender(allow_private=True, timeout_seconds=10), batch=50,
                                    lease=timedelta(minutes=2), parallel=parallel)

    try:
        with running_receiver(Receiver(answer=answer)) as receiver:
            job_id = _running_job(writer, "hooked")
            webhooks.create_endpoint(writer, box, "hooked", CreateWebhookRequest(url=receiver.url),
                                     allow_private=True)
            deliver(1)  # warm: the job's own events so far
            latencies: list[float] = []
            invoker = ThreadPoolExecutor(2)  # the asynchronous invokes; drained before the throughput runs
            for i in range(LATENCY_EVENTS):
                seen = len(arrived)
                _write_after(writer, job_id, "hooked", f"s{i % 2}")
                committed = time.perf_counter()
                assert take_webhooks_pending(), "the write reported no pending event"
                invoker.submit(deliver, 16)
                with lock:
                    assert lock.wait_for(lambda s=seen: len(arrived) > s, timeout=10), "no delivery within 10 s"
                    last = max(arrived.values())
                latencies.append((last - committed) * 1000.0)
            invoker.shutdown(wait=True)

            rates = []
            for parallel in (16, 1):
                for i in range(THROUGHPUT_EVENTS):
                    _write_after(writer, job_id, "hooked", f"t{i % 2}")
                take_webhooks_pending()
                started = time.perf_counter()
                run = deliver(parallel)
                elapsed = time.perf_counter() - started
                assert run.delivered == THROUGHPUT_EVENTS, run
                rates.append((parallel, THROUGHPUT_EVENTS / elapsed))
        report.heading("Webhooks — delivery")
        report.say(f"Latency from a write's commit to the receiver's request (127.0.0.1, one event at a time, "
                   f"{LATENCY_EVENTS} events; the write's pending flag hands deliver_due to a worker thread, as the "
                   f"entry's asynchronous invoke does; in AWS add the invoke and, on the SQS path, the queue):")
        report.say("")
        report.table(["events", "median ms", "p99 ms", "max ms"],
                     [[LATENCY_EVENTS, f"{median(latencies):.1f}", f"{percentile(latencies, 99):.1f}",
                       f"{max(latencies):.1f}"]])
        report.say("")
        report.say(f"Throughput of one delivery worker ({THROUGHPUT_EVENTS} due events, batches of 50, "
                   "signed and recorded):")
        report.say("")
        report.table(["posted at once", "events/s"], [[p, f"{r:.0f}"] for p, r in rates])
    finally:
        worker_db.close()
        writer.close()
        server.drop(url)


def run(report: Report, server: BenchServer) -> None:
    hot_path(report, server)
    delivery(report, server)
