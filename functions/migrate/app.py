"""Migrate function: applies sql/ migrations as a CloudFormation custom resource and on direct invoke.

Direct invoke: {"action": "migrate"} applies pending migrations; {"action": "pending"} lists them.
"""

from __future__ import annotations

from time import monotonic, sleep
from typing import Annotated, Any, Literal

from aws_lambda_powertools import Logger
from aws_lambda_powertools.utilities.typing import LambdaContext
from genjobs.config import get_config
from genjobs.custom_resource import build_response, send_response
from genjobs.db import get_database
from genjobs.db.migrations import Migration, migrate, pending_migrations
from genjobs.errors import DatabaseUnavailable, GenjobsError
from genjobs.invocation import event_kind, handle_direct_invoke
from pydantic import BaseModel, Field, TypeAdapter

logger = Logger(service="genjobs-migrate")


class MigrateAction(BaseModel):
    action: Literal["migrate"]


class PendingAction(BaseModel):
    action: Literal["pending"]


MigrateRequest = Annotated[MigrateAction | PendingAction, Field(discriminator="action")]
_ADAPTER: TypeAdapter[MigrateAction | PendingAction] = TypeAdapter(MigrateRequest)


def _dispatch(action: MigrateAction | PendingAction) -> dict[str, Any]:
    db = get_database()
    if isinstance(action, MigrateAction):
        return {"applied": [m.filename for m in migrate(db)]}
    return {"pending": [m.filename for m in pending_migrations(db)]}


def _migrate_when_reachable(context: LambdaContext) -> list[Migration]:
    """On a first deploy the proxy's target may take minutes to become available: keep trying while the
    retry window and the function's own time allow, then give up with the last error."""
    deadline = monotonic() + get_config().migrate_connect_retry_seconds
    delay = 2.0
    while True:
        try:
            return migrate(get_database())
        except DatabaseUnavailable:
            remaining = min(deadline - monotonic(), context.get_remaining_time_in_millis() / 1000 - 10)
            if remaining <= delay:
                raise
            logger.warning("database not reachable yet; retrying migrations in %.0f s", delay)
            sleep(delay)
            delay = min(delay * 2, 30.0)


def _custom_resource(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    physical_id = event.get("PhysicalResourceId") or "genjobs-schema-migrations"
    if event["RequestType"] == "Delete":
        # The schema outlives the stack's custom resource; deleting it must never drop data.
        response = build_response(event, success=True, reason="nothing to do on delete", data={},
                                  physical_resource_id=physical_id)
    else:
        try:
            applied = [m.filename for m in _migrate_when_reachable(context)]
            response = build_response(event, success=True, reason=f"applied {len(applied)} migrations",
                                      data={"Applied": ",".join(applied)}, physical_resource_id=physical_id)
        except GenjobsError as exc:
            logger.exception("migrations failed")
            response = build_response(event, success=False, reason=exc.message, data={},
                                      physical_resource_id=physical_id)
    send_response(event, response)
    return response


@logger.inject_lambda_context
def lambda_handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    if event_kind(event) == "custom_resource":
        return _custom_resource(event, context)
    return handle_direct_invoke(event, _ADAPTER, _dispatch)
