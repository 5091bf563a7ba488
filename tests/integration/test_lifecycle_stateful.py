"""The job lifecycle as a hypothesis state machine against the real database (issue 12, the standing suite).

Random interleavings of start, claim, image and state deliveries (duplicate and late ones from stale
attempts), progress, completion, failure, cancel, lease expiry and rescue, persona deletion and approval; after
every step the data invariants of tests/support/invariants.py hold for the example's merchant (legal status,
cost counted once, one approved variation, ...) and so do the ones only a history can show: a job's version
never goes back, and nothing runs, starts or lists on a persona once its delete answered.

`make test` runs STATEFUL_EXAMPLES (default 15) examples of up to STATEFUL_STEPS (default 20) steps, derandomized;
`make fuzz` runs more (STATEFUL_EXAMPLES=300, STATEFUL_STEPS=50, random seeds).
"""

from __future__ import annotations

import contextlib
import os
import uuid
from datetime import timedelta
from pathlib import Path
from typing import Any
from uuid import UUID

import psycopg
import pytest
from genjobs.data import jobs as job_data
from genjobs.data import videos as video_data
from genjobs.db import Database
from genjobs.errors import GenjobsError, NotFound
from genjobs.models.actions import PROGRESS_ACTIONS
from genjobs.models.personas import CreatePersonaRequest
from genjobs.services import approval, jobs, maintenance, personas, worker
from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, invariant, precondition, rule, run_state_machine_as_test

from local_runner.media import LocalMediaStore
from tests.support.fakes import FrozenClock, RecordingInvoker
from tests.support.invariants import check_invariants
from tests.support.scenarios import NoVideos, video_output_key

EXAMPLES = int(os.environ.get("STATEFUL_EXAMPLES", "15"))
STEPS = int(os.environ.get("STATEFUL_STEPS", "20"))
DERANDOMIZE = "STATEFUL_SEED" not in os.environ and EXAMPLES <= 50

LEASE = timedelta(minutes=5)
LIMITS = jobs.LimitSettings(default_hourly_limit=1000, cooldown=timedelta(0), max_retries=2)
WORKER = worker.WorkerSettings(lease=LEASE, video_lease=timedelta(minutes=30))
SWEEP = maintenance.MaintenanceSettings(worker_function="genjobs-generation")
STATES = ["idle", "talking"]


class JobLifecycle(RuleBasedStateMachine):
    db: Database
    checker: psycopg.Connection[Any]  # one connection for the invariant checks of every step
    media: Path

    def __init__(self) -> None:
        super().__init__()
        self.merchant = f"m-{uuid.uuid4().hex[:10]}"
        self.clock = FrozenClock()
        self.store = LocalMediaStore(self.media, bucket="genjobs-media-local", base_url="http://media.test")
        self.personas: list[UUID] = []
        self.deleted: set[UUID] = set()
        self.jobs: list[UUID] = []
        self.attempts: dict[UUID, list[int]] = {}  # every attempt a claim handed out, per job
        self.versions: dict[UUID, int] = {}

    # -- helpers ---------------------------------------------------------------------------------------

    def _job(self, job_id: UUID) -> Any:
        return self.db.fetch_one("SELECT * FROM generation_jobs WHERE id = %s", (job_id,))

    def _attempt(self, data: st.DataObject, job_id: UUID) -> int:
        """The current attempt, or (a late delivery) an earlier one."""
        known = self.attempts.get(job_id) or [0]
        return data.draw(st.sampled_from(known), label="attempt")

    # -- rules -----------------------------------------------------------------------------------------

    @precondition(lambda self: len(self.personas) < 3)
    @rule()
    def create_persona(self) -> None:
        persona = personas.create_persona(self.db, self.merchant, CreatePersonaRequest(name="Pip")).persona
        self.personas.append(persona.id)

    @precondition(lambda self: self.personas)
    @rule(data=st.data(), videos=st.booleans(), count=st.integers(1, 3))
    def start(self, data: st.DataObject, videos: bool, count: int) -> None:
        persona = data.draw(st.sampled_from(self.personas), label="persona")
        try:
            started = jobs.start_job(
                self.db, RecordingInvoker(), merchant_id=self.merchant, persona_id=persona,
                job_type="state_videos" if videos else "character_variations",
                body={"count": count, "videos": videos}, variation_count=None if videos else count,
                states=STATES if videos else None, prompt_variables={}, idempotency_key=None, limits=LIMITS,
                clock=self.clock, worker_function="genjobs-generation")
        except GenjobsError as refused:
            # a deleted persona is gone: its start is a 404, whatever else would have refused it
            assert persona not in self.deleted or isinstance(refused, NotFound), refused
            return
        assert persona not in self.deleted, "a job started on a deleted persona"
        self.jobs.append(started.job.id)

    @precondition(lambda self: self.jobs)
    @rule(data=st.data())
    def claim(self, data: st.DataObject) -> None:
        job_id = data.draw(st.sampled_from(self.jobs), label="job")
        claim = job_data.claim_job(self.db, job_id, self.clock(), LEASE)
        if claim is not None:
            self.attempts.setdefault(job_id, []).append(claim.attempt)

    @precondition(lambda self: self.jobs)
    @rule(data=st.data())
    def run_worker(self, data: st.DataObject) -> None:
        """The whole worker (a dispatched run_job): claims, makes every image (or starts every video)."""
        job_id = data.draw(st.sampled_from(self.jobs), label="job")
        outcome = worker.run_job(self.db, _LocalVideos(self.store), self.store, job_id, settings=WORKER,
                                 clock=self.clock)
        if outcome.claimed and outcome.attempt is not None:
            self.attempts.setdefault(job_id, []).append(outcome.attempt)

    @precondition(lambda self: self.attempts)
    @rule(data=st.data(), index=st.integers(0, 2))
    def deliver_image(self, data: st.DataObject, index: int) -> None:
        """One image of a variations job, from the current attempt or a stale one (late), possibly again."""
        job_id = data.draw(st.sampled_from(sorted(self.attempts)), label="job")
        job = self._job(job_id)
        if job is None or job["job_type"] != "character_variations" or index >= job["variation_count"]:
            return
        key = f"jobs/{job_id}/variations/{index}.png"
        job_data.record_variation(
            self.db, job_id=job_id, attempt=self._attempt(data, job_id), index=index, seed=index, bucket="b",
            key=key, url=f"http://media.test/{key}", content_type="image/png", size_bytes=10, width=8, height=8,
            progress=100 * (index + 1) // job["variation_count"], step=f"image_{index}",
            lease_until=self.clock() + LEASE, prompt="p")

    @precondition(lambda self: self.attempts)
    @rule(data=st.data())
    def complete_variations(self, data: st.DataObject) -> None:
        """The worker's completion once every image is in (from the attempt it believes current)."""
        job_id = data.draw(st.sampled_from(sorted(self.attempts)), label="job")
        job = self._job(job_id)
        if job is None or job["job_type"] != "character_variations":
            return
        made = self.db.fetch_value("SELECT count(*) FROM character_variations WHERE job_id = %s", (job_id,))
        if made == job["variation_count"]:
            job_data.complete_job(self.db, job_id=job_id, attempt=self._attempt(data, job_id),
                                  expected=("processing",), now=self.clock())

    @precondition(lambda self: self.attempts)
    @rule(data=st.data())
    def begin_videos(self, data: st.DataObject) -> None:
        job_id = data.draw(st.sampled_from(sorted(self.attempts)), label="job")
        video_data.begin_video_phase(self.db, job_id=job_id, attempt=self._attempt(data, job_id),
                                     lease_until=self.clock() + LEASE, metadata={"video_duration_seconds": 6})

    @precondition(lambda self: self.jobs)
    @rule(data=st.data(), state=st.sampled_from([*STATES, "dancing"]), invocation=st.sampled_from(["a", "b"]))
    def deliver_video(self, data: st.DataObject, state: str, invocation: str) -> None:
        """An S3 ObjectCreated for a state: duplicates (same key), a second output (other invocation), late
        ones (after a cancel or a rescue), unrequested states."""
        job_id = data.draw(st.sampled_from(self.jobs), label="job")
        key = video_output_key(job_id, state, invocation)
        job_data.record_state(self.db, job_id=job_id, merchant_id=None, attempt=None, running=("generating_videos",),
                              state=state, url=f"http://media.test/{key}", bucket="b", key=key, size_bytes=1,
                              complete_when_done=True, now=self.clock(), lease=timedelta(minutes=30))

    @precondition(lambda self: self.attempts)
    @rule(data=st.data(), progress=st.integers(0, 100))
    def report_progress(self, data: st.DataObject, progress: int) -> None:
        job_id = data.draw(st.sampled_from(sorted(self.attempts)), label="job")
        command = PROGRESS_ACTIONS.validate_python({"action": "update_progress", "job_id": str(job_id),
                                                    "attempt": self._attempt(data, job_id), "progress": progress})
        with contextlib.suppress(GenjobsError):  # a stale attempt or a job not running: refused, nothing written
            jobs.run_command(self.db, command, clock=self.clock, lease=LEASE)

    @precondition(lambda self: self.attempts)
    @rule(data=st.data(), retryable=st.booleans())
    def fail(self, data: st.DataObject, retryable: bool) -> None:
        job_id = data.draw(st.sampled_from(sorted(self.attempts)), label="job")
        job_data.fail_job(self.db, job_id=job_id, attempt=self._attempt(data, job_id),
                          expected=("processing", "generating_videos"), retryable=retryable,
                          error_code="PROVIDER_FAILED", error_message="boom", retry_at=self.clock(),
                          now=self.clock())

    @precondition(lambda self: self.jobs)
    @rule(data=st.data())
    def cancel(self, data: st.DataObject) -> None:
        job_id = data.draw(st.sampled_from(self.jobs), label="job")
        with contextlib.suppress(GenjobsError):  # finished already: 409
            jobs.cancel_job(self.db, self.merchant, job_id, clock=self.clock)

    @rule(minutes=st.integers(1, 12))
    def time_passes_and_rescue_sweeps(self, minutes: int) -> None:
        self.clock.advance(timedelta(minutes=minutes))
        maintenance.rescue_stale_jobs(self.db, RecordingInvoker(), settings=SWEEP, clock=self.clock)

    @precondition(lambda self: self.personas)
    @rule(data=st.data())
    def delete_persona(self, data: st.DataObject) -> None:
        persona = data.draw(st.sampled_from(self.personas), label="persona")
        try:
            personas.delete_persona(self.db, self.merchant, persona, clock=self.clock)
        except GenjobsError:
            return  # an active job (409) or already deleted (404)
        self.deleted.add(persona)

    @precondition(lambda self: self.personas)
    @rule(data=st.data())
    def approve(self, data: st.DataObject) -> None:
        persona = data.draw(st.sampled_from(self.personas), label="persona")
        variations = self.db.fetch_all("SELECT id FROM character_variations WHERE persona_id = %s ORDER BY id",
                                       (persona,))
        if not variations:
            return
        variation = data.draw(st.sampled_from([v["id"] for v in variations]), label="variation")
        try:
            approval.approve_variation(self.db, self.merchant, persona, variation, cooldown=LIMITS.cooldown,
                                       clock=self.clock)
        except GenjobsError as refused:
            assert persona not in self.deleted or isinstance(refused, NotFound), refused
            return
        assert persona not in self.deleted, "a deleted persona's variation was approved"

    # -- invariants ------------------------------------------------------------------------------------

    @invariant()
    def data_invariants_hold(self) -> None:
        violations = check_invariants(self.checker, merchants=[self.merchant])
        assert not violations, "\n".join(str(v) for v in violations)

    @invariant()
    def versions_never_go_back(self) -> None:
        for row in self.db.fetch_all("SELECT id, version FROM generation_jobs WHERE merchant_id = %s",
                                     (self.merchant,)):
            assert row["version"] >= self.versions.get(row["id"], 0), row
            self.versions[row["id"]] = row["version"]

    @invariant()
    def nothing_on_a_deleted_persona(self) -> None:
        if not self.deleted:
            return
        active = self.db.fetch_value(
            "SELECT count(*) FROM generation_jobs WHERE persona_id = ANY (%s) "
            "AND status IN ('queued', 'processing', 'generating_videos')", (list(self.deleted),))
        assert active == 0
        for persona in self.deleted:
            with pytest.raises(NotFound):
                jobs.list_jobs(self.db, self.merchant, persona_id=persona, cursor_keys=_KEYS)


class _LocalVideos(NoVideos):
    """Local images, and video starts that Bedrock accepts (the outputs come by deliver_video)."""

    def start_video(self, request: Any) -> str:
        return f"arn:aws:bedrock:us-east-1:000000000000:async-invoke/{request.client_request_token[:20]}"


def _keys() -> Any:
    from genjobs.ports import CursorKeys

    return CursorKeys((b"stateful-test-cursor-key-0123456789",))


_KEYS = _keys()


def test_job_lifecycle_state_machine(db: Database, database_url: str, tmp_path: Path) -> None:
    # Given the real database, When hypothesis runs random interleavings of the lifecycle's operations,
    # Then every invariant holds after every step (a failure prints the shortest sequence that breaks one)
    with psycopg.connect(database_url) as checker:
        JobLifecycle.db, JobLifecycle.checker, JobLifecycle.media = db, checker, tmp_path
        run_state_machine_as_test(JobLifecycle, settings=settings(
            max_examples=EXAMPLES, stateful_step_count=STEPS, deadline=None, derandomize=DERANDOMIZE,
            suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much], database=None,
            print_blob=True))
