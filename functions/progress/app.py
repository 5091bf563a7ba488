"""Progress function: job reads and long-poll, job lists, the timeline, cancel (HTTP); progress commands
(direct invoke); S3 ObjectCreated events for finished state videos; GET /health."""

from __future__ import annotations

import logging
import time
from datetime import datetime
from typing import Annotated, Any
from urllib.parse import unquote_plus
from uuid import UUID

from aws_lambda_powertools.event_handler import Response
from aws_lambda_powertools.event_handler.openapi.params import Header, Query
from genjobs import dependencies
from genjobs.db.migrations import load_migrations
from genjobs.entry import Function
from genjobs.http.openapi import error_responses, success_response
from genjobs.http.resolver import aware, create_resolver, etag, merchant_id_from, version_in_etag
from genjobs.models.actions import PROGRESS_ACTIONS, ProgressCommand
from genjobs.models.health import HealthReport
from genjobs.models.jobs import (
    DEFAULT_PAGE_SIZE,
    MAX_PAGE_SIZE,
    MAX_TIMELINE_PAGE,
    MAX_WAIT_SECONDS,
    Job,
    JobPage,
    JobProgress,
    JobTimeline,
    JobType,
)
from genjobs.models.videos import S3Record, VideoRecorded
from genjobs.services import jobs
from genjobs.services.health import check_health
from genjobs.services.worker.videos import record_video_output
from pydantic import ValidationError

logger = logging.getLogger("genjobs.progress")
app = create_resolver()
_MIGRATIONS = load_migrations()
JSON = "application/json"
STATUS_FILTER = ("one status or several, comma-separated (queued, processing, generating_videos, completed, "
                 "failed, canceled)")
# Seconds kept free of a long-poll before the Lambda deadline, to answer in time.
DEADLINE_MARGIN_SECONDS = 1.5


def _merchant() -> str:
    return merchant_id_from(app, dependencies.get().settings.merchant_claim)


def _sleep(seconds: float) -> None:
    """The long-poll's pause between reads (module level so tests can observe it)."""
    time.sleep(seconds)


@app.get("/health",
         summary="Health",
         description="Whether the database answers: server version, round-trip time, pending migrations. No "
                     "token needed; 503 when the database is unreachable.",
         responses={**success_response(200, "The database is reachable", HealthReport),
                                **error_responses(authenticated=False)})
def get_health() -> HealthReport:
    return check_health(dependencies.get().db, _MIGRATIONS)


@app.get("/jobs/<job_id>",
         summary="Read a job",
         description="Status, step, progress, states, variation URLs, `outputs` (every media file), `model_id`, "
                     "cost, error and version (also the ETag). `?wait=N` (at most 20 s) long-polls until the "
                     "version differs from `If-None-Match` (or from the first read) or the job finishes.",
         responses={**success_response(200, "The job", Job), **error_responses(404)})
def get_job(
    job_id: UUID,
    wait: Annotated[int, Query(ge=0, le=MAX_WAIT_SECONDS, description="seconds to wait for a change")] = 0,
    if_none_match: Annotated[str | None, Header(alias="if-none-match")] = None,
) -> Response[Job]:
    deps = dependencies.get()
    wait_seconds = float(wait)
    remaining_ms = getattr(app.lambda_context, "get_remaining_time_in_millis", None)
    if wait_seconds and callable(remaining_ms):
        budget = remaining_ms() / 1000.0 - DEADLINE_MARGIN_SECONDS
        wait_seconds = max(0.0, min(wait_seconds, budget))
    poll = jobs.LongPoll(tick_seconds=deps.settings.long_poll_tick_ms / 1000.0, sleep=_sleep)
    job = jobs.get_job(deps.db, _merchant(), job_id, wait_seconds=wait_seconds,
                       known_version=version_in_etag(if_none_match), poll=poll)
    return Response(status_code=200, content_type=JSON, body=job,
                    headers={"ETag": etag(job.version), "Cache-Control": "no-store"})


@app.get("/jobs",
         summary="List jobs",
         description="The merchant's jobs, newest first, each with its outputs. Filters: `status` (one or several, "
                     "comma-separated: `failed,canceled`), `persona_id`, `job_type`, `created_after` / "
                     "`created_before` (ISO 8601). Keyset paged with `cursor`: jobs started meanwhile never shift "
                     "a page.",
         responses={**success_response(200, "A page of jobs, newest first", JobPage),
                              **error_responses(400, 404)})
def list_jobs(
    *,
    status: Annotated[str | None, Query(max_length=200, description=STATUS_FILTER)] = None,
    persona_id: Annotated[UUID | None, Query()] = None,
    job_type: Annotated[JobType | None, Query()] = None,
    created_after: Annotated[datetime | None, Query(description="only jobs created after this instant")] = None,
    created_before: Annotated[datetime | None, Query(description="only jobs created before this instant")] = None,
    limit: Annotated[int, Query(ge=1, le=MAX_PAGE_SIZE)] = DEFAULT_PAGE_SIZE,
    cursor: Annotated[str | None, Query(description="next_cursor of the previous page")] = None,
) -> JobPage:
    deps = dependencies.get()
    return jobs.list_jobs(deps.db, _merchant(), status=status, persona_id=persona_id, job_type=job_type,
                          created_after=aware(created_after, "created_after"),
                          created_before=aware(created_before, "created_before"), limit=limit, cursor=cursor,
                          cursor_keys=deps.cursor_keys())


@app.get("/jobs/<job_id>/events",
         summary="A job's timeline",
         description="Every status and step change and every generated output of the job, oldest first; "
                     "`after` pages on from `next_after`.",
         responses={**success_response(200, "The job's timeline", JobTimeline),
                                             **error_responses(404)})
def get_job_events(
    job_id: UUID,
    after: Annotated[int, Query(ge=0, description="return events with a larger id")] = 0,
    limit: Annotated[int, Query(ge=1, le=MAX_TIMELINE_PAGE)] = MAX_TIMELINE_PAGE,
) -> JobTimeline:
    return jobs.job_timeline(dependencies.get().db, _merchant(), job_id, after=after, limit=limit)


@app.post("/jobs/<job_id>/cancel",
          summary="Cancel a job",
          description="Cancel a queued or running job (409 when it already finished). The job is charged for the "
                      "outputs the provider already produced (images stored, videos recorded), once.",
          responses={**success_response(200, "The canceled job", Job),
                                             **error_responses(404, 409)})
def cancel_job(job_id: UUID) -> Job:
    deps = dependencies.get()
    return jobs.cancel_job(deps.db, _merchant(), job_id, clock=deps.clock)


def run_command(command: ProgressCommand) -> JobProgress:
    deps = dependencies.get()
    return jobs.run_command(deps.db, command, clock=deps.clock, lease=deps.settings.job_lease)


def object_created(event: dict[str, Any]) -> dict[str, Any]:
    """Finished state videos. Records that are not ours, or not S3 records at all, are logged and dropped; a
    database outage raises, so Lambda retries the event (recording is idempotent)."""
    deps = dependencies.get()
    results: list[VideoRecorded] = []
    for raw in event.get("Records") or []:
        try:
            record = S3Record.model_validate(raw)
        except ValidationError as exc:
            logger.warning("dropping a malformed S3 record: %s", exc.errors(include_url=False, include_input=False))
            results.append(VideoRecorded(bucket="", key="", outcome="ignored", reason="malformed S3 record"))
            continue
        key = unquote_plus(record.s3.object.key)  # S3 URL-encodes keys in notifications
        if not record.event_name.startswith("ObjectCreated"):
            logger.info("ignoring S3 %s for %s", record.event_name, key)
            continue
        results.append(record_video_output(deps.db, deps.store, bucket=record.s3.bucket.name, key=key,
                                           size=record.s3.object.size, clock=deps.clock,
                                           lease=deps.settings.job_video_lease))
    return {"records": [r.model_dump(mode="json") for r in results]}


lambda_handler = Function("progress", http=app, actions=PROGRESS_ACTIONS, dispatch=run_command, s3=object_created)
