"""Resolver factory shared by every HTTP-facing function, and what a route reads from the request besides
its parameters: the merchant (the authorizer's claim) and the version in `If-None-Match`.

`create_resolver()` returns a powertools `APIGatewayHttpResolver` with request validation on and the
error handlers installed, so each handler module only declares its routes. Bodies that are not JSON at
all are refused before the resolver runs (`genjobs.http.requests`), through no private API of powertools.

One cost of powertools' request validation is fixed where it arises (issue 18): on every request it asks
`is_scalar_field` of each query and header parameter of the route, which re-inspects the parameter's
annotation (typing origins and unions) although a route's parameters never change. `cache_scalar_checks()`
memoizes that answer per parameter object, for the name the validation middleware calls. The validation
itself, its errors and the OpenAPI document are unchanged; tests/unit/test_resolver_cache.py fails when
powertools caches the check itself (then this goes) or stops calling it by that name.
"""

from __future__ import annotations

import inspect
import logging
from collections.abc import Callable
from datetime import datetime
from typing import Any, TypeVar

from aws_lambda_powertools.event_handler import APIGatewayHttpResolver, Response
from aws_lambda_powertools.event_handler.exceptions import NotFoundError
from aws_lambda_powertools.event_handler.middlewares import openapi_validation
from aws_lambda_powertools.event_handler.openapi.exceptions import RequestValidationError

from genjobs.errors import Forbidden, GenjobsError, Unauthorized, ValidationFailed, validation_details
from genjobs.http.errors import error_response, plain_error_response
from genjobs.http.fast_path import FastPath
from genjobs.models.text import storable_text

logger = logging.getLogger("genjobs.http")
AnyCallable = TypeVar("AnyCallable", bound=Callable[..., Any])


def _memoized_per_field(check: Callable[[Any], bool]) -> Callable[[Any], bool]:
    """`check(field)` answered once per field object. Keyed by id() and holding the field, so an id reused
    after a field is gone can never answer for another one; route parameters live as long as the app."""
    answers: dict[int, tuple[Any, bool]] = {}

    def memoized(field: Any) -> bool:
        known = answers.get(id(field))
        if known is not None and known[0] is field:
            return known[1]
        answer = check(field)
        answers[id(field)] = (field, answer)
        return answer

    memoized.__wrapped__ = check  # type: ignore[attr-defined]
    return memoized


def cache_scalar_checks() -> None:
    """Memoize the scalar check powertools' request validation runs per parameter and request (idempotent)."""
    current = getattr(openapi_validation, "is_scalar_field", None)
    if current is not None and not hasattr(current, "__wrapped__"):
        openapi_validation.is_scalar_field = _memoized_per_field(current)  # type: ignore[attr-defined,assignment]


def answer_error(error: Exception) -> Response[str]:
    """The answer for an exception a route raised: its code's status for a domain error, else a 500 that leaks
    nothing (the stack trace goes to the logs with the request's correlation id). The resolver's exception
    handlers and the fast path (`genjobs.http.fast_path`) both answer through it."""
    if isinstance(error, GenjobsError):
        if error.code == "INTERNAL_ERROR":
            logger.exception("internal error")
        return error_response(error)
    logger.exception("unhandled error: %s", type(error).__name__)
    return plain_error_response(500, "INTERNAL_ERROR", "An unexpected error occurred.")


class Resolver(APIGatewayHttpResolver):
    """powertools' HTTP API resolver whose GET routes are also registered with a `FastPath`: the entry asks
    the fast path first and the resolver answers whatever the fast path leaves (genjobs.http.fast_path)."""

    def __init__(self) -> None:
        super().__init__(enable_validation=True)
        self.fast_path = FastPath(answer_error)

    def route(self, rule: str, method: str | list[str] | tuple[str], *args: Any,
              **kwargs: Any) -> Callable[[AnyCallable], AnyCallable]:
        register = super().route(rule, method, *args, **kwargs)
        # powertools' get()/post() pass their options positionally: read them by name
        options = inspect.signature(super().route).bind(rule, method, *args, **kwargs)
        options.apply_defaults()
        given = options.arguments
        plain = not any(given.get(k) for k in ("cors", "compress", "cache_control", "middlewares")) \
            and given.get("enable_validation") is not False

        def decorator(func: AnyCallable) -> AnyCallable:
            registered = register(func)
            if plain:
                for item in (method,) if isinstance(method, str) else method:
                    self.fast_path.add(rule, item, func, status_code=int(given.get("status_code") or 200))
            return registered

        return decorator


def create_resolver() -> Resolver:
    cache_scalar_checks()
    app = Resolver()

    @app.exception_handler(GenjobsError)
    def _domain_error(error: GenjobsError) -> Response[str]:
        return answer_error(error)

    @app.exception_handler(RequestValidationError)
    def _invalid_request(error: RequestValidationError) -> Response[str]:
        errors = list(error.errors())
        if any(err.get("type") == "json_invalid" for err in errors):
            return plain_error_response(400, "BAD_REQUEST", "The request body is not valid JSON.")
        return plain_error_response(
            422, "VALIDATION_ERROR", "The request is not valid.", {"errors": validation_details(errors)}
        )

    @app.not_found
    def _not_found(_: NotFoundError) -> Response[str]:
        return plain_error_response(404, "NOT_FOUND", "No such route.")

    @app.exception_handler(Exception)
    def _unexpected(error: Exception) -> Response[str]:
        return answer_error(error)

    return app


def _claims(app: APIGatewayHttpResolver) -> dict[str, Any]:
    """The JWT authorizer's claims (payload 2.0: requestContext.authorizer.jwt.claims), read from the raw event:
    the data-class chain builds three wrapper objects per read, on every request (issue 18)."""
    context = app.current_event.raw_event.get("requestContext") or {}
    claims = ((context.get("authorizer") or {}).get("jwt") or {}).get("claims")
    return claims if isinstance(claims, dict) else {}


def merchant_id_from(app: APIGatewayHttpResolver, claim: str) -> str:
    """The merchant identity: the JWT authorizer's claim, never anything from the request body."""
    value = _claims(app).get(claim)
    # the same text rules as any input (no NUL, no lone surrogate), and no edge whitespace: " acme " is not
    # "acme" (trimming would merge two tenants)
    if not isinstance(value, str) or not value or value != value.strip() or len(value) > 200:
        raise Unauthorized(f"The token has no usable '{claim}' claim.")
    try:
        return storable_text(value)
    except ValueError:
        raise Unauthorized(f"The token has no usable '{claim}' claim.") from None


def actor_from(app: APIGatewayHttpResolver) -> str:
    """Who an operator is, for the audit trail: the token's `sub` claim."""
    value = _claims(app).get("sub")
    if not isinstance(value, str) or not value.strip() or len(value) > 300:
        raise Unauthorized("The token has no usable 'sub' claim.")
    try:
        return storable_text(value)
    except ValueError:
        raise Unauthorized("The token has no usable 'sub' claim.") from None


def require_scope(app: APIGatewayHttpResolver, scope: str) -> None:
    """The operator routes need `scope`. API Gateway already refuses a token without it (AuthorizationScopes in
    template.yaml: 403); checked here again so a route added without its scopes is still closed. The JWT
    authorizer passes the `scope` claim as one space-separated string (a list claim arrives as "[a b]")."""
    claims = _claims(app)
    raw = claims.get("scope", claims.get("scp"))
    if isinstance(raw, list):
        granted = [str(s) for s in raw]
    else:
        granted = raw.strip("[]").split() if isinstance(raw, str) else []
    if scope not in granted:
        raise Forbidden(f"This route needs the {scope} scope.", details={"required_scope": scope})


def aware(value: datetime | None, parameter: str) -> datetime | None:
    """A time filter must name its offset (`Z` or `+02:00`): a naive time would be read in the server's zone."""
    if value is not None and value.tzinfo is None:
        raise ValidationFailed(f"{parameter} needs a time zone offset, e.g. 2026-11-26T12:00:00Z.",
                               details={"parameter": parameter})
    return value


def version_in_etag(value: str | None) -> int | None:
    """The version in an If-None-Match value: `"7"`, `W/"7"` or `7` (the first of a list); else None."""
    if not value:
        return None
    first = value.split(",")[0].strip()
    if first.startswith("W/"):
        first = first[2:]
    first = first.strip().strip('"')
    return int(first) if first.isdigit() and len(first) <= 18 else None


def etag(version: int) -> str:
    return f'"{version}"'
