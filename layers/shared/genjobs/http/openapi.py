"""OpenAPI descriptions of the error responses, so the generated document matches what handlers send."""

from __future__ import annotations

from typing import Any

from aws_lambda_powertools.event_handler.openapi.types import OpenAPIResponse
from pydantic import BaseModel

_DESCRIPTIONS = {
    400: "Malformed request (body is not JSON, bad header or cursor)",
    401: "Missing or unusable merchant identity",
    402: "The monthly budget would be exceeded",
    403: "The token lacks the genjobs/admin scope (API Gateway answers this before the function runs)",
    404: "Not found (also for another merchant's resources)",
    409: "Conflict with the current state",
    415: "The request body is not JSON (Content-Type other than application/json)",
    422: "Validation error",
    429: "Rate limited or regeneration cooldown active (see Retry-After)",
    503: "Database unavailable (see Retry-After)",
}


class ErrorDetail(BaseModel):
    code: str
    message: str
    details: dict[str, Any] = {}


class ErrorBody(BaseModel):
    error: ErrorDetail


def error_responses(*statuses: int, authenticated: bool = True) -> dict[int, OpenAPIResponse]:
    """Error responses for a route; 401 (authenticated routes), 422 and 503 apply to every route."""
    wanted = sorted({*statuses, 422, 503, *((401,) if authenticated else ())})
    return {
        status: {"description": _DESCRIPTIONS[status],
                 "content": {"application/json": {"model": ErrorBody}}}
        for status in wanted
    }


def success_response(status: int, description: str, model: Any = None) -> dict[int, OpenAPIResponse]:
    """A success response; without a model it has no body (an empty `content`: powertools would otherwise
    document a JSON `null`)."""
    response: OpenAPIResponse = {"description": description,
                                 "content": {"application/json": {"model": model}} if model is not None else {}}
    return {status: response}
