"""Worker function: runs one job per direct invoke `run_job` (sent asynchronously by a start, the re-dispatch and
the rescue sweeps). Its own function, so its 900 s runs and Bedrock's pace never take the API's concurrency:
reserved concurrency from the template's WorkerReservedConcurrency (docs/capacity.md has the arithmetic)."""

from __future__ import annotations

from aws_lambda_powertools import Metrics
from aws_lambda_powertools.metrics import MetricUnit
from genjobs import dependencies
from genjobs.entry import Function
from genjobs.errors import DatabaseUnavailable
from genjobs.models.actions import WORKER_ACTIONS, RunJob
from genjobs.services import worker
from genjobs.settings import get_settings

metrics = Metrics(namespace=get_settings().metrics_namespace, service="worker")


def run_job(action: RunJob) -> worker.RunOutcome:
    deps = dependencies.get()
    settings = worker.WorkerSettings(lease=deps.settings.job_lease, video_lease=deps.settings.job_video_lease,
                                     media_region=getattr(deps.store, "region", None))
    outcome = worker.run_job(deps.db, deps.provider, deps.store, action.job_id, settings=settings, clock=deps.clock)
    if outcome.charged:
        metrics.add_metric(name="GenerationCostUsd", unit=MetricUnit.NoUnit, value=outcome.cost_usd)
    return outcome


# run_job arrives as an async invoke: a database outage must fail the invocation (Lambda retries it, then the
# DLQ), not answer ok:false, which Lambda counts as done
lambda_handler = Function("worker", actions=WORKER_ACTIONS, dispatch=run_job, metrics=metrics,
                          propagate={"run_job": (DatabaseUnavailable,)})
