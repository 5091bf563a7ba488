"""Resolver factory shared by every HTTP-facing function.

`create_resolver()` returns a powertools `APIGatewayHttpResolver` with request validation on and the
error handlers installed, so each handler module only declares its routes.
"""

from __future__ import annotations

import logging
from typing import Any

from aws_lambda_powertools.event_handler import APIGatewayHttpResolver, Response
from aws_lambda_powertools.event_handler.exceptions import NotFoundError
from aws_lambda_powertools.event_handler.middlewares.openapi_validation import OpenAPIRequestValidationMiddleware
from aws_lambda_powertools.event_handler.openapi.exceptions import (
    RequestUnsupportedContentType,
    RequestValidationError,
)

from genjobs.errors import GenjobsError, Unauthorized
from genjobs.http.errors import error_response, plain_error_response

logger = logging.getLogger("genjobs.http")


def _validation_details(errors: Any) -> list[dict[str, Any]]:
    details: list[dict[str, Any]] = []
    for err in errors:
        loc = [str(part) for part in err.get("loc", ())]
        details.append({"location": loc, "message": err.get("msg", "invalid value"), "type": err.get("type")})
    return details


class _JsonBodiesOnly(OpenAPIRequestValidationMiddleware):
    """Request validation for an API that takes JSON bodies only. Powertools would also parse form and
    multipart bodies (and raise a bare ValueError for a multipart header without a boundary: a 500); any
    content type but JSON is refused here (415). A body that is not UTF-8 (API Gateway passes it base64-encoded)
    is not JSON either: 400, where powertools would raise UnicodeDecodeError (a 500)."""

    def _get_body(self, app: Any) -> dict[str, Any]:
        content_type = (app.current_event.headers.get("content-type") or "").strip()
        if content_type and not content_type.lower().startswith("application/json"):
            raise RequestUnsupportedContentType("Unsupported content type", errors=[
                {"type": "unsupported_content_type", "loc": ("body",), "msg": "the body must be JSON"}])
        try:
            body: dict[str, Any] = super()._get_body(app)
        except UnicodeDecodeError as exc:
            raise RequestValidationError([{"type": "json_invalid", "loc": ("body", exc.start),
                                           "msg": "the body is not UTF-8", "input": {}, "ctx": {}}]) from exc
        return body


def create_resolver() -> APIGatewayHttpResolver:
    app = APIGatewayHttpResolver(enable_validation=True)
    app._request_validation_middleware = _JsonBodiesOnly()  # type: ignore[no-untyped-call]

    @app.exception_handler(GenjobsError)
    def _domain_error(error: GenjobsError) -> Response[str]:
        if error.code == "INTERNAL_ERROR":
            logger.exception("internal error")
        return error_response(error)

    @app.exception_handler(RequestValidationError)
    def _invalid_request(error: RequestValidationError) -> Response[str]:
        errors = list(error.errors())
        if any(err.get("type") == "json_invalid" for err in errors):
            return plain_error_response(400, "BAD_REQUEST", "The request body is not valid JSON.")
        return plain_error_response(
            422, "VALIDATION_ERROR", "The request is not valid.", {"errors": _validation_details(errors)}
        )

    @app.exception_handler(RequestUnsupportedContentType)
    def _unsupported_media_type(error: RequestUnsupportedContentType) -> Response[str]:
        content_type = (app.current_event.headers.get("content-type") or "").strip()
        return plain_error_response(415, "UNSUPPORTED_MEDIA_TYPE", "The request body must be JSON "
                                    "(Content-Type: application/json).", {"content_type": content_type[:200]})

    @app.not_found
    def _not_found(_: NotFoundError) -> Response[str]:
        return plain_error_response(404, "NOT_FOUND", "No such route.")

    @app.exception_handler(Exception)
    def _unexpected(error: Exception) -> Response[str]:
        # Never leak a stack trace to the caller; it goes to the logs with the request's correlation id.
        logger.exception("unhandled error: %s", type(error).__name__)
        return plain_error_response(500, "INTERNAL_ERROR", "An unexpected error occurred.")

    return app


def merchant_id_from(app: APIGatewayHttpResolver, claim: str) -> str:
    """The merchant identity: the JWT authorizer's claim, never anything from the request body."""
    claims = app.current_event.request_context.authorizer.jwt_claim
    value = claims.get(claim)
    if not isinstance(value, str) or not value.strip() or len(value) > 200:
        raise Unauthorized(f"The token has no usable '{claim}' claim.")
    return value.strip()
