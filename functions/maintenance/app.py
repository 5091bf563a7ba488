"""Maintenance function: the every-minute sweeps (EventBridge schedule), also on direct invoke.

Direct invoke: {"action": "sweep"} runs every sweep; "rescue", "redispatch", "poll_videos", "retention",
"webhooks" (the outbox backstop: asks for a delivery when messages are due) run one. Counts are published
as EMF metrics (JobsRescued, JobsTimedOut, JobsRedispatched, JobsDeleted, JobsArchived,
VideosRecoveredByPolling, VideosFailed).
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
from genjobs.models.actions import MAINTENANCE_ACTIONS, Sweep
from genjobs.services import maintenance
from genjobs.settings import get_settings

logger = logging.getLogger("genjobs.maintenance")
metrics = Metrics(namespace=get_settings().metrics_namespace, service="maintenance")

METRICS = {"rescued": "JobsRescued", "timed_out": "JobsTimedOut", "redispatched": "JobsRedispatched",
           "deleted": "JobsDeleted", "archived": "JobsArchived", "videos_completed": "VideosRecoveredByPolling",
           "videos_failed": "VideosFailed"}


def run_sweeps(which: str) -> maintenance.SweepReport:
    deps = dependencies.get()
    config = deps.settings
    settings = maintenance.MaintenanceSettings(
        worker_function=config.worker_function_name,
        redispatch_after=timedelta(seconds=config.redispatch_after_seconds),
        retention_failed=timedelta(days=config.retention_failed_days),
        retention_archive=timedelta(days=config.retention_archive_days),
        video_report_after=timedelta(seconds=config.video_poll_after_seconds),
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
        maintenance.apply_retention(db, settings=settings, clock=clock, report=report)
    if which in ("sweep", "webhooks"):
        maintenance.webhook_backstop(db, clock=clock, report=report)
    for field_name, metric in METRICS.items():
        metrics.add_metric(name=metric, unit=MetricUnit.Count, value=getattr(report, field_name))
    logger.info("maintenance sweep", extra={"sweep": which, **asdict(report)})
    return report


def dispatch(action: Sweep) -> dict[str, Any]:
    return asdict(run_sweeps(action.action))


def scheduled(_: dict[str, Any]) -> dict[str, Any]:
    return asdict(run_sweeps("sweep"))


lambda_handler = Function("maintenance", actions=MAINTENANCE_ACTIONS, dispatch=dispatch, schedule=scheduled,
                          metrics=metrics)
