"""Direct (Lambda-to-Lambda) invocations: the `{"action": ...}` envelope and event classification.

Callers are trusted through IAM, so payloads may carry a merchant id. Requests are validated with a
pydantic discriminated union per function; answers are `{"ok": true, "result": ...}` or
`{"ok": false, "error": {"code", "message", "details"}}`, never an unhandled exception.
"""

from __future__ import annotations

import dataclasses
import logging
from collections.abc import Callable, Mapping
from datetime import date, datetime
from decimal import Decimal
from typing import Any, Literal, TypeVar
from uuid import UUID

from pydantic import BaseModel, TypeAdapter, ValidationError

from genjobs.errors import GenjobsError

logger = logging.getLogger("genjobs.invocation")

A = TypeVar("A")
EventKind = Literal["http", "direct", "s3", "schedule", "custom_resource", "unknown"]


def event_kind(event: Any) -> EventKind:
    if not isinstance(event, Mapping):
        return "unknown"
    if "requestContext" in event and "routeKey" in event:
        return "http"
    if "action" in event:
        return "direct"
    records = event.get("Records")
    if isinstance(records, list) and records and isinstance(records[0], Mapping) \
            and records[0].get("eventSource") == "aws:s3":
        return "s3"
    if event.get("source") == "aws.events" or event.get("detail-type") == "Scheduled Event":
        return "schedule"
    if "RequestType" in event and "ResponseURL" in event:
        return "custom_resource"
    return "unknown"


def to_jsonable(value: Any) -> Any:
    """What a Lambda answer may hold: the runtime serializes it with plain `json`."""
    if isinstance(value, BaseModel):
        return value.model_dump(mode="json")
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return to_jsonable(dataclasses.asdict(value))
    if isinstance(value, list | tuple):
        return [to_jsonable(v) for v in value]
    if isinstance(value, dict):
        return {k: to_jsonable(v) for k, v in value.items()}
    if isinstance(value, UUID):
        return str(value)
    if isinstance(value, datetime | date):
        return value.isoformat()
    if isinstance(value, Decimal):
        return float(value)
    return value


def error_envelope(code: str, message: str, details: dict[str, Any] | None = None) -> dict[str, Any]:
    return {"ok": False, "error": {"code": code, "message": message, "details": details or {}}}


def handle_direct_invoke(event: Any, adapter: TypeAdapter[A], dispatch: Callable[[A], Any]) -> dict[str, Any]:
    try:
        action = adapter.validate_python(event)
    except ValidationError as exc:
        errors = [
            {"location": [str(p) for p in err["loc"]], "message": err["msg"], "type": err["type"]}
            for err in exc.errors(include_url=False, include_input=False)
        ]
        return error_envelope("VALIDATION_ERROR", "The invocation payload is not valid.", {"errors": errors})
    try:
        result = dispatch(action)
    except GenjobsError as exc:
        return {"ok": False, "error": exc.to_dict()}
    except Exception:
        logger.exception("direct invocation failed")
        return error_envelope("INTERNAL_ERROR", "An unexpected error occurred.")
    return {"ok": True, "result": to_jsonable(result)}
