"""The one place where domain error codes become HTTP statuses.

Every error body has the shape {"error": {"code": ..., "message": ..., "details": {...}}}.
BUDGET_EXCEEDED is 402 Payment Required: unlike a rate limit it does not clear by waiting a few
minutes, so it gets no Retry-After. NO_MODEL_CONFIGURED is 409: the deployment's model configuration
conflicts with the request (an operator's fix), not an outage to wait out.
"""

from __future__ import annotations

import json
from typing import Any

from aws_lambda_powertools.event_handler import Response

from genjobs.errors import DatabaseUnavailable, GenjobsError, RetryableRejection, error_document

STATUS_BY_CODE: dict[str, int] = {
    "BAD_REQUEST": 400,
    "UNAUTHORIZED": 401,
    "BUDGET_EXCEEDED": 402,
    "FORBIDDEN": 403,
    "NOT_FOUND": 404,
    "CONFLICT": 409,
    "ILLEGAL_TRANSITION": 409,
    "STALE_ATTEMPT": 409,
    "NO_MODEL_CONFIGURED": 409,
    "UNSUPPORTED_MEDIA_TYPE": 415,
    "VALIDATION_ERROR": 422,
    "COOLDOWN_ACTIVE": 429,
    "RATE_LIMITED": 429,
    "INTERNAL_ERROR": 500,
    "MIGRATION_ERROR": 500,
    "SERVICE_UNAVAILABLE": 503,
}

JSON = "application/json"


def error_body(code: str, message: str, details: dict[str, Any] | None = None) -> str:
    return json.dumps({"error": error_document(code, message, details)}, default=str)


def _headers(error: GenjobsError) -> dict[str, str]:
    if isinstance(error, RetryableRejection | DatabaseUnavailable):
        return {"Retry-After": str(error.retry_after_seconds)}
    return {}


def error_response(error: GenjobsError) -> Response[str]:
    """The resolver's answer for a domain error."""
    return Response(status_code=STATUS_BY_CODE.get(error.code, 500), content_type=JSON,
                    body=error_body(error.code, error.message, error.details), headers=_headers(error))


def plain_error_response(status: int, code: str, message: str, details: dict[str, Any] | None = None) -> Response[str]:
    return Response(status_code=status, content_type=JSON, body=error_body(code, message, details))


def gateway_error(error: GenjobsError) -> dict[str, Any]:
    """A domain error as an API Gateway payload-2.0 answer, for requests refused before the resolver runs."""
    return {
        "statusCode": STATUS_BY_CODE.get(error.code, 500),
        "headers": {"Content-Type": JSON, **_headers(error)},
        "body": error_body(error.code, error.message, error.details),
        "isBase64Encoded": False,
    }
