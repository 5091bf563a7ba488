"""The answers of the database functions (sql/013), typed: an `Outcome` names what happened; a `JobAnswer`
(a command on one job) also carries the job before and after. genjobs.services.outcomes turns the refusals
into errors; the transition trigger's refusal (SQLSTATE GJ409) becomes IllegalTransition here."""

from __future__ import annotations

import json
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any, LiteralString
from uuid import UUID

import psycopg
from pydantic import BaseModel, ConfigDict

from genjobs.db import Database
from genjobs.db.outbox import PENDING_COLUMN, PENDING_VALUE, note_webhooks_pending
from genjobs.errors import IllegalTransition
from genjobs.models.jobs import Job, JobProgress, JobStatus, job_from_row


class Outcome(BaseModel):
    """What a database function answered: `outcome` names what happened; the other fields depend on it
    (see sql/013_job_functions.sql). genjobs.services.outcomes turns the refusals into errors."""

    model_config = ConfigDict(extra="allow", frozen=True)

    outcome: str

    def get(self, name: str, default: Any = None) -> Any:
        if name in type(self).model_fields:
            return getattr(self, name)
        return (self.model_extra or {}).get(name, default)

    def get_before(self, name: str) -> Any:
        """The job's `name` as it was before the call (commands on one job)."""
        return self.get(f"before_{name}")


class JobAnswer(Outcome):
    """A command on one job: the job's state before (locked: the latest committed version) and after."""

    before_status: JobStatus | None = None
    before_attempt: int | None = None
    before_version: int | None = None
    job: dict[str, Any] | None = None
    charged: bool = False
    media_recorded: bool = False

    @property
    def changed(self) -> bool:
        return self.job is not None and self.job.get("version") != self.before_version

    def as_job(self) -> Job:
        assert self.job is not None
        return job_from_row(self.job)

    def as_progress(self) -> JobProgress:
        assert self.job is not None
        return JobProgress.model_validate({**self.job, "changed": self.changed})


@contextmanager
def transitions_checked(job_id: UUID) -> Iterator[None]:
    """Turn the transition trigger's GJ409 into IllegalTransition (details: job_id, current and requested status)."""
    try:
        yield
    except psycopg.DatabaseError as exc:
        if exc.sqlstate != "GJ409":
            raise
        try:
            detail: dict[str, Any] = json.loads(exc.diag.message_detail or "{}")
        except ValueError:
            detail = {}
        current, requested = detail.get("from"), detail.get("to")
        raise IllegalTransition(
            f"A {current} job cannot become {requested}.",
            details={"job_id": str(job_id), "current_status": current, "requested_status": requested},
        ) from exc


def call_writer(db: Database, call: LiteralString, params: Any) -> Any:
    """`SELECT <call>` for a database function that changes jobs, answering its value; when the function's
    changes wrote webhook events (sql/090), the same statement says so and the entry asks for a delivery.
    The flag is the second entry of the select list, computed after the call (and its triggers) has run."""
    row = db.fetch_one("SELECT " + call + " AS answer, " + PENDING_COLUMN + " AS webhooks_pending", params)
    assert row is not None
    note_pending(row)
    return row["answer"]


def note_pending(row: Any) -> None:
    """Note the outbox's signal read by a writer's statement (a `webhooks_pending` column)."""
    if row and row.get("webhooks_pending") == PENDING_VALUE:
        note_webhooks_pending()
