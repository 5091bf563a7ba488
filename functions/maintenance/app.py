"""Maintenance function: the every-minute sweeps (EventBridge schedule), also on direct invoke, and the daily
model lifecycle check.

Direct invoke: {"action": "sweep"} runs every sweep; "rescue", "redispatch", "poll_videos", "retention",
"webhooks" (the outbox backstop: asks for a delivery when messages are due) run one. Counts are published as
EMF metrics (JobsRescued, JobsTimedOut, JobsRedispatched, JobsDeleted, JobsArchived, PersonasPurged,
MediaObjectsDeleted, VideosRecoveredByPolling, VideosFailed).
{"action": "model_lifecycle"} (the daily schedule's input) asks Bedrock about every enabled model and
publishes ModelLegacy (enabled models that are legacy or eol; the ModelLegacyAlarm watches it), ModelsChecked
and ModelLifecycleErrors.
"""

from __future__ import annotations

import logging
from dataclasses import asdict
from datetime import timedelta
from typing import Any

from aws_lambda_powertools import Metrics
from aws_lambda_powertools.metrics import MetricUnit
from genjobs import dependencies
from genjobs.entry import Function
from genjobs.models.actions import MAINTENANCE_ACTIONS, CheckModelLifecycles, Sweep
from genjobs.models.registry import LifecycleReport
from genjobs.services import maintenance, models
from genjobs.settings import get_settings

logger = logging.getLogger("genjobs.maintenance")
metrics = Metrics(namespace=get_settings().metrics_namespace, service="maintenance")

METRICS = {"rescued": "JobsRescued", "timed_out": "JobsTimedOut", "redispatched": "JobsRedispatched",
           "deleted": "JobsDeleted", "archived": "JobsArchived", "personas_purged": "PersonasPurged",
           "media_deleted": "MediaObjectsDeleted", "videos_completed": "VideosRecoveredByPolling",
           "videos_failed": "VideosFailed"}


def run_sweeps(which: str) -> maintenance.SweepReport:
    deps = dependencies.get()
    config = deps.settings
    settings = maintenance.MaintenanceSettings(
        worker_function=config.worker_function_name,
        redispatch_after=timedelta(seconds=config.redispatch_after_seconds),
        retention_failed=timedelta(days=config.retention_failed_days),
        retention_archive=timedelta(days=config.retention_archive_days),
        persona_purge_after=timedelta(days=config.persona_purge_after_days),
        video_report_after=timedelta(seconds=config.video_poll_after_seconds),
        video_lease=config.job_video_lease,
        batch_size=config.maintenance_batch_size,
    )
    db, clock = deps.db, deps.clock
    report = maintenance.SweepReport()
    if which in ("sweep", "rescue"):
        maintenance.rescue_stale_jobs(db, deps.invoker, settings=settings, clock=clock, report=report)
    if which in ("sweep", "redispatch"):
        maintenance.redispatch_queued_jobs(db, deps.invoker, settings=settings, clock=clock, report=report)
    if which in ("sweep", "poll_videos"):
        maintenance.poll_stale_videos(db, deps.provider, deps.store, settings=settings, clock=clock, report=report)
    if which in ("sweep", "retention"):
        maintenance.apply_retention(db, deps.store, settings=settings, clock=clock, report=report)
    if which in ("sweep", "webhooks"):
        maintenance.webhook_backstop(db, clock=clock, report=report)
    for field_name, metric in METRICS.items():
        metrics.add_metric(name=metric, unit=MetricUnit.Count, value=getattr(report, field_name))
    logger.info("maintenance sweep", extra={"sweep": which, **asdict(report)})
    return report


def check_models() -> LifecycleReport:
    deps = dependencies.get()
    report = models.check_lifecycles(deps.db, deps.catalog, clock=deps.clock)
    metrics.add_metric(name="ModelLegacy", unit=MetricUnit.Count, value=len(report.legacy) + len(report.eol))
    metrics.add_metric(name="ModelsChecked", unit=MetricUnit.Count, value=report.checked)
    metrics.add_metric(name="ModelLifecycleErrors", unit=MetricUnit.Count, value=len(report.errors))
    logger.info("model lifecycle check", extra=report.model_dump(mode="json"))
    return report


def dispatch(action: Sweep | CheckModelLifecycles) -> Any:
    if isinstance(action, CheckModelLifecycles):
        return check_models()
    return asdict(run_sweeps(action.action))


def scheduled(_: dict[str, Any]) -> dict[str, Any]:
    return asdict(run_sweeps("sweep"))


lambda_handler = Function("maintenance", actions=MAINTENANCE_ACTIONS, dispatch=dispatch, schedule=scheduled,
                          metrics=metrics)
