"""Maintenance function: the every-minute sweeps (EventBridge schedule), also on direct invoke.

Direct invoke: {"action": "sweep"} runs every sweep; "rescue", "redispatch", "poll_videos", "retention"
run one.
Counts are published as EMF metrics (JobsRescued, JobsTimedOut, JobsRedispatched, JobsDeleted, JobsArchived).
"""

from __future__ import annotations

from dataclasses import asdict
from datetime import timedelta
from typing import Annotated, Any, Literal

from aws_lambda_powertools import Logger, Metrics
from aws_lambda_powertools.metrics import MetricUnit
from aws_lambda_powertools.utilities.typing import LambdaContext
from genjobs import runtime
from genjobs.clock import utc_now
from genjobs.config import get_config
from genjobs.db import get_database
from genjobs.invocation import event_kind, handle_direct_invoke
from genjobs.services import maintenance
from pydantic import BaseModel, Field, TypeAdapter

logger = Logger(service="genjobs-maintenance")
metrics = Metrics(namespace=get_config().metrics_namespace, service="maintenance")

Sweep = Literal["sweep", "rescue", "redispatch", "poll_videos", "retention"]


class SweepAction(BaseModel):
    action: Sweep


_ADAPTER: TypeAdapter[SweepAction] = TypeAdapter(Annotated[SweepAction, Field()])

METRICS = {"rescued": "JobsRescued", "timed_out": "JobsTimedOut", "redispatched": "JobsRedispatched",
           "deleted": "JobsDeleted", "archived": "JobsArchived", "videos_completed": "VideosRecoveredByPolling",
           "videos_failed": "VideosFailed"}


def _settings() -> maintenance.MaintenanceSettings:
    config = get_config()
    return maintenance.MaintenanceSettings(
        worker_function=config.generation_function_name,
        redispatch_after=timedelta(seconds=config.redispatch_after_seconds),
        retention_failed=timedelta(days=config.retention_failed_days),
        retention_archive=timedelta(days=config.retention_archive_days),
        video_report_after=timedelta(seconds=config.video_poll_after_seconds),
        batch_size=config.maintenance_batch_size,
    )


def run_sweeps(which: Sweep) -> maintenance.SweepReport:
    db, invoker, settings = get_database(), runtime.invoker(), _settings()
    report = maintenance.SweepReport()
    if which in ("sweep", "rescue"):
        maintenance.rescue_stale_jobs(db, invoker, settings=settings, clock=utc_now, report=report)
    if which in ("sweep", "redispatch"):
        maintenance.redispatch_queued_jobs(db, invoker, settings=settings, clock=utc_now, report=report)
    if which in ("sweep", "poll_videos"):
        maintenance.poll_stale_videos(db, runtime.media_provider(), runtime.media_store(), settings=settings,
                                      clock=utc_now, report=report)
    if which in ("sweep", "retention"):
        maintenance.apply_retention(db, settings=settings, clock=utc_now, report=report)
    for field_name, metric in METRICS.items():
        metrics.add_metric(name=metric, unit=MetricUnit.Count, value=getattr(report, field_name))
    logger.info("maintenance sweep", extra={"sweep": which, **asdict(report)})
    return report


def _dispatch(action: SweepAction) -> dict[str, Any]:
    return asdict(run_sweeps(action.action))


@metrics.log_metrics
@logger.inject_lambda_context
def lambda_handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    if event_kind(event) == "schedule":
        return {"ok": True, "result": asdict(run_sweeps("sweep"))}
    return handle_direct_invoke(event, _ADAPTER, _dispatch)
