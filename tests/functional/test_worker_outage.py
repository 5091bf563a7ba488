"""Fault 2 of issue 12: a state-videos job must not stall silently when its worker loses the database between
the claim and recording its invocations. The run_job invoke raises (Lambda retries it, the DLQ sees it), it
is logged, and the rescue sweep re-queues the job within one (short) lease."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import timedelta
from typing import Any

import pytest
from genjobs import dependencies
from genjobs.db import Database
from genjobs.errors import DatabaseUnavailable
from genjobs.ports import VideoRequest
from genjobs.services import maintenance
from genjobs.settings import Settings
from psycopg import sql
from psycopg.conninfo import conninfo_to_dict

import functions.worker.app as worker_app
from local_runner.media import LocalMediaProvider, LocalMediaStore
from tests.support.events import invoke
from tests.support.fakes import FrozenClock, RecordingInvoker
from tests.support.postgres import PostgresCluster
from tests.support.scenarios import approved_persona, start_job

LEASE = timedelta(seconds=120)


class DatabaseLostOnStart(LocalMediaProvider):
    """Bedrock accepts the invocation, and at that moment the database goes away: every backend of the test
    database is terminated (pg_terminate_backend from a second connection) and new connections are refused
    (a failover in progress), so the worker cannot record the invocation it started."""

    def __init__(self, store: LocalMediaStore, cluster: PostgresCluster, dbname: str) -> None:
        super().__init__(store)
        self.cluster, self.dbname = cluster, dbname
        self.started = 0

    def start_video(self, request: VideoRequest) -> str:
        self.started += 1
        arn = super().start_video(request)
        with self.cluster.admin() as admin:
            admin.execute(sql.SQL("ALTER DATABASE {} ALLOW_CONNECTIONS false").format(sql.Identifier(self.dbname)))
            admin.execute("SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
                          "WHERE datname = %s AND pid <> pg_backend_pid()", (self.dbname,))
        return arn

    def restore(self) -> None:
        with self.cluster.admin() as admin:
            admin.execute(sql.SQL("ALTER DATABASE {} ALLOW_CONNECTIONS true").format(sql.Identifier(self.dbname)))


@pytest.fixture
def outage(db: Database, store: LocalMediaStore, pg_cluster: PostgresCluster, database_url: str
           ) -> Iterator[tuple[DatabaseLostOnStart, FrozenClock]]:
    clock = FrozenClock()
    provider = DatabaseLostOnStart(store, pg_cluster, str(conninfo_to_dict(database_url)["dbname"]))
    settings = Settings(job_lease_seconds=int(LEASE.total_seconds()), job_video_lease_seconds=1800)
    dependencies.override(settings=settings, db=db, store=store, provider=provider, clock=clock)
    yield provider, clock
    provider.restore()
    dependencies.reset()


def test_lost_database_between_claim_and_invocations_raises_logs_and_is_rescued_within_one_lease(
        db: Database, store: LocalMediaStore, outage: tuple[DatabaseLostOnStart, FrozenClock], caplog: Any) -> None:
    provider, clock = outage
    # Given an active persona and a queued state-videos job
    persona, _ = approved_persona(db, "acme", store, clock=clock)
    job_id = start_job(db, "acme", persona, clock=clock, job_type="state_videos", states=["idle", "talking"])
    claimed_at = clock()

    # When the async run_job invoke claims it and loses the database right after Bedrock accepted the first video
    with pytest.raises(DatabaseUnavailable):
        invoke(worker_app, {"action": "run_job", "job_id": str(job_id)})

    # Then the invocation failed loudly: raised out of the handler (not ok:false) and logged with its action
    assert provider.started == 1
    assert "direct invocation run_job failed; raising so Lambda retries it" in caplog.text

    # And once the database is back, the job holds the short lease (nothing it started is recorded as running)
    provider.restore()
    row = db.fetch_one("SELECT status, attempt, lease_expires_at FROM generation_jobs WHERE id = %s", (job_id,))
    assert row is not None and row["status"] == "generating_videos" and row["attempt"] == 1
    assert row["lease_expires_at"] == claimed_at + LEASE

    # And a retried invoke from Lambda finds nothing to claim (the job is not queued): it does no harm
    retried = invoke(worker_app, {"action": "run_job", "job_id": str(job_id)})
    assert retried == {"ok": True, "result": {**retried["result"], "claimed": False}}

    # When maintenance sweeps just before the lease ends, Then the job is left alone
    invoker = RecordingInvoker()
    settings = maintenance.MaintenanceSettings(worker_function="genjobs-generation")
    clock.advance(LEASE - timedelta(seconds=1))
    assert maintenance.rescue_stale_jobs(db, invoker, settings=settings, clock=clock).rescued == 0

    # When it sweeps once the lease has run out, Then the job is re-queued and re-dispatched (within one lease)
    clock.advance(timedelta(seconds=2))
    report = maintenance.rescue_stale_jobs(db, invoker, settings=settings, clock=clock)
    assert report.rescued == 1
    assert invoker.calls == [("genjobs-generation", {"action": "run_job", "job_id": str(job_id)})]
    assert db.fetch_value("SELECT status FROM generation_jobs WHERE id = %s", (job_id,)) == "queued"
    # And the re-dispatched invoke runs the job again, as a new attempt, to its videos
    provider.start_video = LocalMediaProvider.start_video.__get__(provider)  # type: ignore[method-assign]
    again = invoke(worker_app, {"action": "run_job", "job_id": str(job_id)})
    assert again["ok"] is True and again["result"]["attempt"] == 2
    assert again["result"]["status"] == "generating_videos"
