"""HTTP request → API Gateway HTTP API payload format 2.0 event, and the function's answer → HTTP response,
following https://docs.aws.amazon.com/apigateway/latest/developerguide/http-api-develop-integrations-lambda.html.

Event: `rawPath` and `rawQueryString` as sent; header names lower-cased and repeated headers joined with
commas; the `Cookie` header moved to `cookies`; `queryStringParameters` decoded with repeated names joined
with commas; `pathParameters` decoded; a body that is not text is base64-encoded (`isBase64Encoded`);
`requestContext` with the route key, stage `$default`, a request id, times, and the JWT authorizer's claims.

Response: `statusCode`, `headers`, `multiValueHeaders` (tolerated), `cookies` (each a `Set-Cookie`), and a
base64 body decoded when `isBase64Encoded`. A result that is not such a dict is sent as a 200 JSON body, the
way API Gateway infers the response for format 2.0.
"""

from __future__ import annotations

import base64
import binascii
import json
import secrets
import time
from collections.abc import Iterable
from dataclasses import dataclass, field
from email.utils import formatdate
from typing import Any
from urllib.parse import parse_qsl

from local_runner.auth import Authorization
from local_runner.context import ACCOUNT_ID

API_ID = "local"
_TEXT_TYPES = ("application/json", "application/xml", "application/javascript", "application/x-www-form-urlencoded",
               "application/graphql", "application/yaml", "application/x-yaml")


def is_text_content_type(content_type: str | None) -> bool:
    if not content_type:
        return False
    media = content_type.split(";", 1)[0].strip().lower()
    return media.startswith("text/") or media in _TEXT_TYPES or media.endswith(("+json", "+xml"))


def _request_id() -> str:
    """Shaped like API Gateway's (base64-ish, 16 characters, ending in '=')."""
    return base64.b64encode(secrets.token_bytes(11)).decode()[:15] + "="


def _apigw_time(epoch_ms: int) -> str:
    return time.strftime("%d/%b/%Y:%H:%M:%S +0000", time.gmtime(epoch_ms / 1000))


@dataclass
class HttpRequest:
    method: str
    raw_path: str
    raw_query: str
    headers: list[tuple[str, str]]
    body: bytes
    source_ip: str
    protocol: str = "HTTP/1.1"

    def header(self, name: str) -> str | None:
        values = [v for k, v in self.headers if k.lower() == name.lower()]
        return ",".join(values) if values else None


def build_event(request: HttpRequest, *, route_key: str, path_parameters: dict[str, str],
                authorization: Authorization | None, stage: str = "$default",
                now_ms: int | None = None) -> dict[str, Any]:
    epoch_ms = now_ms if now_ms is not None else int(time.time() * 1000)
    headers: dict[str, str] = {}
    cookies: list[str] = []
    for name, value in request.headers:
        key = name.lower()
        if key == "cookie":
            cookies.extend(c.strip() for c in value.split(";") if c.strip())
            continue
        headers[key] = f"{headers[key]},{value}" if key in headers else value
    port = headers.get("host", "").rpartition(":")[2] if ":" in headers.get("host", "") else "80"
    headers.setdefault("x-forwarded-for", request.source_ip)
    headers.setdefault("x-forwarded-port", port)
    headers.setdefault("x-forwarded-proto", "http")
    headers.setdefault("x-amzn-trace-id", f"Root=1-{int(epoch_ms / 1000):08x}-{secrets.token_hex(12)}")
    if request.body and "content-length" not in headers:
        headers["content-length"] = str(len(request.body))

    query: dict[str, str] = {}
    for name, value in parse_qsl(request.raw_query, keep_blank_values=True):
        query[name] = f"{query[name]},{value}" if name in query else value

    request_id = _request_id()
    domain = headers.get("host", "localhost")
    context: dict[str, Any] = {
        "accountId": ACCOUNT_ID,
        "apiId": API_ID,
        "domainName": domain,
        "domainPrefix": domain.split(".", 1)[0].split(":", 1)[0],
        "http": {
            "method": request.method.upper(),
            "path": request.raw_path,
            "protocol": request.protocol,
            "sourceIp": request.source_ip,
            "userAgent": headers.get("user-agent", ""),
        },
        "requestId": request_id,
        "routeKey": route_key,
        "stage": stage,
        "time": _apigw_time(epoch_ms),
        "timeEpoch": epoch_ms,
    }
    if authorization is not None:
        context["authorizer"] = {"jwt": {"claims": dict(authorization.claims), "scopes": authorization.scopes}}

    event: dict[str, Any] = {
        "version": "2.0",
        "routeKey": route_key,
        "rawPath": request.raw_path,
        "rawQueryString": request.raw_query,
        "headers": headers,
    }
    if cookies:
        event["cookies"] = cookies
    if query:
        event["queryStringParameters"] = query
    event["requestContext"] = context
    if path_parameters:
        event["pathParameters"] = dict(path_parameters)
    event["isBase64Encoded"] = False
    if request.body:
        text = _as_text(request.body) if is_text_content_type(headers.get("content-type")) else None
        if text is None:
            event["body"] = base64.b64encode(request.body).decode()
            event["isBase64Encoded"] = True
        else:
            event["body"] = text
    return event


def _as_text(body: bytes) -> str | None:
    try:
        return body.decode("utf-8")
    except UnicodeDecodeError:
        return None


@dataclass
class HttpResponse:
    status: int
    headers: list[tuple[str, str]] = field(default_factory=list)
    body: bytes = b""

    def header(self, name: str) -> str | None:
        for key, value in self.headers:
            if key.lower() == name.lower():
                return value
        return None


def json_response(status: int, payload: Any, headers: Iterable[tuple[str, str]] = ()) -> HttpResponse:
    body = payload if isinstance(payload, bytes) else json.dumps(payload, separators=(",", ":")).encode()
    return HttpResponse(status=status, headers=[("Content-Type", "application/json"), *headers], body=body)


def gateway_error(status: int, message: str, headers: Iterable[tuple[str, str]] = ()) -> HttpResponse:
    """An error API Gateway itself produces (not the function): `{"message": "..."}`."""
    return json_response(status, {"message": message}, headers)


class BadIntegrationResponse(ValueError):
    """The function's result cannot be turned into an HTTP response (API Gateway: 500)."""


def map_response(result: Any, request_id: str) -> HttpResponse:
    if not isinstance(result, dict) or "statusCode" not in result:
        # Format 2.0: a result without statusCode is the JSON body of a 200.
        return HttpResponse(status=200, body=json.dumps(result).encode(),
                            headers=[("Content-Type", "application/json"), ("Apigw-Requestid", request_id)])
    try:
        status = int(result["statusCode"])
    except (TypeError, ValueError) as exc:
        raise BadIntegrationResponse(f"statusCode {result.get('statusCode')!r} is not a number") from exc
    if not 100 <= status <= 599:
        raise BadIntegrationResponse(f"statusCode {status} is out of range")
    headers: list[tuple[str, str]] = []
    seen: set[str] = set()
    for name, value in (result.get("headers") or {}).items():
        headers.append((str(name), _header_value(value)))
        seen.add(str(name).lower())
    for name, values in (result.get("multiValueHeaders") or {}).items():
        if str(name).lower() in seen:
            continue
        headers.extend((str(name), _header_value(v)) for v in (values or []))
    for cookie in result.get("cookies") or []:
        headers.append(("Set-Cookie", str(cookie)))
    raw = result.get("body")
    if raw is None:
        body = b""
    elif result.get("isBase64Encoded"):
        try:
            body = base64.b64decode(str(raw), validate=True)
        except (binascii.Error, ValueError) as exc:
            raise BadIntegrationResponse("isBase64Encoded body is not valid base64") from exc
    else:
        body = raw.encode() if isinstance(raw, str) else json.dumps(raw).encode()
    if body and "content-type" not in {k.lower() for k, _ in headers}:
        headers.append(("Content-Type", "application/json"))
    headers.append(("Apigw-Requestid", request_id))
    return HttpResponse(status=status, headers=headers, body=body)


def _header_value(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


def http_date(epoch: float | None = None) -> str:
    return formatdate(epoch, usegmt=True)
