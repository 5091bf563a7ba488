"""Migrate function: applies sql/ migrations as a CloudFormation custom resource and on direct invoke.

Direct invoke: {"action": "migrate"} applies pending migrations; {"action": "pending"} lists them.
As a custom resource it always answers CloudFormation (the entry sends FAILED with the reason whatever is
raised), so a failed migration fails the deploy at once instead of leaving the stack waiting.
"""

from __future__ import annotations

import logging
from time import monotonic, sleep
from typing import Any

from aws_lambda_powertools.utilities.typing import LambdaContext
from genjobs import dependencies
from genjobs.cloudformation import CustomResourceResult
from genjobs.db.migrations import Migration, database_ahead, migrate, pending_migrations
from genjobs.entry import Function
from genjobs.errors import DatabaseUnavailable
from genjobs.models.actions import MIGRATE_ACTIONS, Migrate, MigrateAction

logger = logging.getLogger("genjobs.migrate")
PHYSICAL_ID = "genjobs-schema-migrations"


def dispatch(action: MigrateAction) -> dict[str, Any]:
    db = dependencies.get().db
    if isinstance(action, Migrate):
        return {"applied": [m.filename for m in migrate(db)]}
    return {"pending": [m.filename for m in pending_migrations(db)]}


def _migrate_when_reachable(context: LambdaContext) -> list[Migration]:
    """On a first deploy the proxy's target may take minutes to become available: keep trying while the
    retry window and the function's own time allow, then give up with the last error."""
    deps = dependencies.get()
    deadline = monotonic() + deps.settings.migrate_connect_retry_seconds
    delay = 2.0
    while True:
        try:
            return migrate(deps.db)
        except DatabaseUnavailable:
            remaining = min(deadline - monotonic(), context.get_remaining_time_in_millis() / 1000 - 10)
            if remaining <= delay:
                raise
            logger.warning("database not reachable yet; retrying migrations in %.0f s", delay)
            sleep(delay)
            delay = min(delay * 2, 30.0)


def custom_resource(event: dict[str, Any], context: LambdaContext) -> CustomResourceResult:
    if event["RequestType"] == "Delete":
        # The schema outlives the stack's custom resource; deleting it must never drop data.
        return CustomResourceResult(reason="nothing to do on delete")
    applied = [m.filename for m in _migrate_when_reachable(context)]
    # A rollback runs the previous release against a newer schema: the normal expand/contract state, not a
    # failure (FAILED here would leave the stack in UPDATE_ROLLBACK_FAILED).
    ahead = database_ahead(dependencies.get().db)
    reason = f"applied {len(applied)} migrations" + (f" (database ahead: {', '.join(ahead)})" if ahead else "")
    return CustomResourceResult(reason=reason, data={"Applied": ",".join(applied)})


lambda_handler = Function("migrate", actions=MIGRATE_ACTIONS, dispatch=dispatch, custom_resource=custom_resource,
                          custom_resource_id=PHYSICAL_ID)
