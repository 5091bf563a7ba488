"""Lambda events for the handlers: the JSON fixtures in events/ (the same files `sam local invoke` takes), and
API Gateway HTTP API events built by the local runner's one builder (`local_runner.apigw.build_event`, payload
format 2.0), as API Gateway sends them behind the JWT authorizer."""

from __future__ import annotations

import base64
import json
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

from local_runner.apigw import HttpRequest, build_event
from local_runner.auth import Authorization
from local_runner.context import LambdaContext

EVENTS_DIR = Path(__file__).resolve().parents[2] / "events"
# what a client reaching the deployed API over HTTPS sends (as in events/progress/get_health.json)
_BASE_HEADERS = {
    "accept": "application/json",
    "host": "api.example.com",
    "user-agent": "curl/8.5.0",
    "x-forwarded-port": "443",
    "x-forwarded-proto": "https",
}
_CLIENT_IP = "203.0.113.10"


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
) -> dict[str, Any]:
    """An API Gateway HTTP API v2 event for `method path` on `route` (default: the path itself), as the JWT
    authorizer would pass it: claims `sub` and `merchant_id` when a merchant is given, plus `claims`. A JSON
    `body` (or a `raw_body`) gets `Content-Type: application/json` unless `headers` say otherwise."""
    all_headers = {**_BASE_HEADERS, **{k.lower(): v for k, v in (headers or {}).items()}}
    if raw_body is None and body is not None:
        raw_body = json.dumps(body)
    if raw_body is not None:
        all_headers.setdefault("content-type", "application/json")
    authorization = None
    if merchant_id is not None or claims is not None:
        all_claims = {"sub": f"user-{merchant_id}", **({"merchant_id": merchant_id} if merchant_id else {}),
                      **(claims or {})}
        authorization = Authorization(claims=all_claims, scopes=None)
    request = HttpRequest(method=method, raw_path=path, raw_query=urlencode(query or {}),
                          headers=list(all_headers.items()), body=(raw_body or "").encode(), source_ip=_CLIENT_IP)
    return build_event(request, route_key=f"{method} {route or path}", path_parameters=path_parameters or {},
                       authorization=authorization)


def lambda_context(timeout_seconds: float = 30.0) -> LambdaContext:
    """The context of one test invocation: function genjobs-test, 512 MB, `timeout_seconds` left."""
    return LambdaContext("genjobs-test", memory_mb=512, timeout_seconds=timeout_seconds)


def invoke(handler_module: Any, event: dict[str, Any], *, timeout_seconds: float = 30.0) -> dict[str, Any]:
    result: dict[str, Any] = handler_module.lambda_handler(event, lambda_context(timeout_seconds))
    return result


def json_body(response: dict[str, Any]) -> Any:
    body = response.get("body") or "null"
    if response.get("isBase64Encoded"):
        body = base64.b64decode(body).decode()
    return json.loads(body)
