"""Build Lambda events from the JSON fixtures in events/ (the same files `sam local invoke` takes)."""

from __future__ import annotations

import base64
import copy
import json
import uuid
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

EVENTS_DIR = Path(__file__).resolve().parents[2] / "events"
_BASE_HTTP = EVENTS_DIR / "progress" / "get_health.json"


def load_event(relative: str) -> dict[str, Any]:
    event = json.loads((EVENTS_DIR / relative).read_text())
    assert isinstance(event, dict)
    return event


def http_event(
    method: str,
    path: str,
    *,
    route: str | None = None,
    path_parameters: dict[str, str] | None = None,
    body: Any = None,
    raw_body: str | None = None,
    query: dict[str, str] | None = None,
    headers: dict[str, str] | None = None,
    merchant_id: str | None = None,
    claims: dict[str, Any] | None = None,
    base64_body: bool = False,
) -> dict[str, Any]:
    """An API Gateway HTTP API v2 event, as the JWT authorizer would pass it."""
    event = copy.deepcopy(json.loads(_BASE_HTTP.read_text()))
    route_key = f"{method} {route or path}"
    event["routeKey"] = route_key
    event["rawPath"] = path
    event["rawQueryString"] = urlencode(query or {})
    if query:
        event["queryStringParameters"] = dict(query)
    event["headers"] = {**event["headers"], **{k.lower(): v for k, v in (headers or {}).items()}}
    ctx = event["requestContext"]
    ctx["routeKey"] = route_key
    ctx["http"]["method"] = method
    ctx["http"]["path"] = path
    ctx["requestId"] = str(uuid.uuid4())
    if path_parameters:
        event["pathParameters"] = path_parameters
    if merchant_id is not None or claims is not None:
        all_claims = {"sub": f"user-{merchant_id}", **({"merchant_id": merchant_id} if merchant_id else {}),
                      **(claims or {})}
        ctx["authorizer"] = {"jwt": {"claims": all_claims, "scopes": None}}
    if raw_body is None and body is not None:
        raw_body = json.dumps(body)
    if raw_body is not None:
        event["headers"].setdefault("content-type", "application/json")
        if base64_body:
            event["body"] = base64.b64encode(raw_body.encode()).decode()
            event["isBase64Encoded"] = True
        else:
            event["body"] = raw_body
    return event


class FakeLambdaContext:
    function_name = "genjobs-test"
    function_version = "$LATEST"
    invoked_function_arn = "arn:aws:lambda:us-east-1:123456789012:function:genjobs-test"
    memory_limit_in_mb = 512
    aws_request_id = "test-request"
    log_group_name = "/aws/lambda/genjobs-test"
    log_stream_name = "test"

    def get_remaining_time_in_millis(self) -> int:
        return 30_000


def invoke(handler_module: Any, event: dict[str, Any]) -> dict[str, Any]:
    result: dict[str, Any] = handler_module.lambda_handler(event, FakeLambdaContext())
    return result


def json_body(response: dict[str, Any]) -> Any:
    body = response.get("body") or "null"
    if response.get("isBase64Encoded"):
        body = base64.b64decode(body).decode()
    return json.loads(body)
