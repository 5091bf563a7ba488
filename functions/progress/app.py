"""Progress function: job reads and long-poll, job lists, progress commands, S3 completion events, health."""

from __future__ import annotations

from typing import Any

from aws_lambda_powertools import Logger
from aws_lambda_powertools.logging import correlation_paths
from aws_lambda_powertools.utilities.typing import LambdaContext
from genjobs.db import get_database
from genjobs.db.migrations import load_migrations
from genjobs.http.app import create_resolver
from genjobs.http.openapi import error_responses
from genjobs.models.health import HealthReport
from genjobs.services.health import check_health

logger = Logger(service="genjobs-progress")
app = create_resolver()
_MIGRATIONS = load_migrations()


@app.get("/health", responses=error_responses(authenticated=False))
def get_health() -> HealthReport:
    return check_health(get_database(), _MIGRATIONS)


@logger.inject_lambda_context(correlation_id_path=correlation_paths.API_GATEWAY_HTTP)
def lambda_handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    return app.resolve(event, context)
