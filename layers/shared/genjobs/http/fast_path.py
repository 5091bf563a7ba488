"""The fast path of GET routes: the same route functions, validated with their own annotations, answered
without powertools' per-request machinery (issue 18).

Why. On GET /jobs/{id} powertools' `resolve()` spends about as long as the SQL does (≈450 µs of Python for a
≈550 µs query on the bench machine): it matches the path against every rule, builds the middleware frames,
validates through its dependant machinery, re-validates and re-serializes the answer and serializes the
headers. The hot reads must stay within 1.5x of raw psycopg (`make bench PART=overhead`).

What. API Gateway has already routed the request: `routeKey` ("GET /jobs/{job_id}") names the route and
`pathParameters` hold its arguments. For a GET route whose parameters are all scalars taken from the path,
the query string or the headers, `FastPath` validates each argument with a `TypeAdapter` of the route's own
annotation — the same `Query(ge=..)` / `Header(alias=..)` metadata the OpenAPI document and the resolver's
validation come from, so no rule is written twice — calls the route function, validates its answer against
the declared return type and serializes it with that type's adapter.

What stays the resolver's. Everything the fast path is not sure of: a routeKey it does not know, a raw path
that does not spell the path parameters exactly (percent-encoding, a stage prefix), a missing required or an
invalid argument. It then answers None and the entry calls `resolve()`, so every 4xx body the resolver writes
is the resolver's own. An error raised *by the route function* is answered by `answer_error`, the same
function the resolver's exception handlers call (`genjobs.http.resolver`), without running the route twice.

The route functions read the request through the resolver (`app.current_event`, `app.lambda_context`);
`use_request` sets both where powertools' own `resolve()` keeps them (tests/unit/test_fast_path.py fails if
powertools moves them).
"""

from __future__ import annotations

import enum
import inspect
import types
import typing
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import date, datetime
from decimal import Decimal
from typing import Annotated, Any, Literal
from uuid import UUID

from aws_lambda_powertools.event_handler import Response
from aws_lambda_powertools.event_handler.api_gateway import BaseRouter
from aws_lambda_powertools.event_handler.openapi.params import Header, Param, Path, Query
from aws_lambda_powertools.utilities.data_classes import APIGatewayProxyEventV2
from aws_lambda_powertools.utilities.typing import LambdaContext
from pydantic import TypeAdapter, ValidationError

JSON = "application/json"
_SCALARS: tuple[type, ...] = (str, int, float, bool, UUID, datetime, date, Decimal, enum.Enum)
_MISSING = object()

ErrorAnswer = Callable[[Exception], Response[Any]]


@dataclass(frozen=True)
class _Argument:
    name: str  # the route function's keyword
    source: Literal["path", "query", "header"]
    key: str  # its name in the event (header names lowercase, as API Gateway passes them)
    adapter: TypeAdapter[Any]
    default: Any  # _MISSING when required


@dataclass(frozen=True)
class _Route:
    func: Callable[..., Any]
    arguments: tuple[_Argument, ...]
    path: str  # "/jobs/{job_id}": what the raw path must equal once the path parameters are put in
    answer: TypeAdapter[Any] | None  # the declared return type (the body of a Response[...])
    status_code: int


def use_request(event: Mapping[str, Any], context: LambdaContext | None) -> APIGatewayProxyEventV2:
    """Make `event` the request the route functions read, where powertools' `resolve()` puts it."""
    proxy = APIGatewayProxyEventV2(event if isinstance(event, dict) else dict(event))
    BaseRouter.current_event = proxy
    BaseRouter.lambda_context = context  # type: ignore[assignment]
    return proxy


def _scalar(annotation: Any) -> bool:
    """str, int, UUID, datetime, an Enum, a Literal, or an optional one of those."""
    origin = typing.get_origin(annotation)
    if origin is Literal:
        return True
    if origin is typing.Union or origin is types.UnionType:
        members = [a for a in typing.get_args(annotation) if a is not type(None)]
        return len(members) == 1 and _scalar(members[0])
    return isinstance(annotation, type) and issubclass(annotation, _SCALARS)


def _split(annotation: Any) -> tuple[Any, Param | None]:
    """(the type, the powertools parameter in its Annotated metadata, if any)."""
    if typing.get_origin(annotation) is Annotated:
        base, *extras = typing.get_args(annotation)
        params = [e for e in extras if isinstance(e, Param)]
        return base, (params[0] if params else None)
    return annotation, None


def _argument(name: str, parameter: inspect.Parameter, annotation: Any, path_names: set[str]) -> _Argument | None:
    base, param = _split(annotation)
    if not _scalar(base):
        return None
    default = _MISSING if parameter.default is inspect.Parameter.empty else parameter.default
    if name in path_names:
        if param is not None and not isinstance(param, Path):
            return None
        source: Literal["path", "query", "header"] = "path"
        key = name
    elif param is None or isinstance(param, Query):
        source, key = "query", (param.alias if param is not None and param.alias else name)
    elif isinstance(param, Header):
        alias = param.alias or (name.replace("_", "-") if param.convert_underscores else name)
        source, key = "header", alias.lower()
    else:
        return None  # a cookie, a body, a form: the resolver's
    if param is not None and param.default is not None and not param.is_required() and default is _MISSING:
        default = param.default
    return _Argument(name, source, key, TypeAdapter(annotation), default)


class FastPath:
    """The GET routes of one resolver that can be answered without it. `add` is called for every route the
    resolver registers; `answer` returns the API Gateway answer, or None for the resolver to answer."""

    def __init__(self, answer_error: ErrorAnswer) -> None:
        self._routes: dict[str, _Route] = {}
        self._answer_error = answer_error

    @property
    def route_keys(self) -> frozenset[str]:
        return frozenset(self._routes)

    def add(self, rule: str, method: str, func: Callable[..., Any], *, status_code: int = 200) -> bool:
        """Take `func` as the fast answer of `method rule` if every parameter is a scalar from the path, the
        query or the headers (True); otherwise leave the route to the resolver (False)."""
        if method.upper() != "GET":
            return False
        path_names = {part[1:-1] for part in rule.split("/") if part.startswith("<") and part.endswith(">")}
        hints = typing.get_type_hints(func, include_extras=True)
        arguments: list[_Argument] = []
        for name, parameter in inspect.signature(func).parameters.items():
            if parameter.kind in (inspect.Parameter.VAR_POSITIONAL, inspect.Parameter.VAR_KEYWORD):
                return False
            argument = _argument(name, parameter, hints.get(name, str), path_names)
            if argument is None:
                return False
            arguments.append(argument)
        if {a.name for a in arguments if a.source == "path"} != path_names:
            return False
        answer = hints.get("return")
        if typing.get_origin(answer) is Response:
            answer = typing.get_args(answer)[0] if typing.get_args(answer) else None
        if answer is bytes:
            return False  # not JSON: the resolver's
        route_path = rule.replace("<", "{").replace(">", "}")
        self._routes[f"GET {route_path}"] = _Route(
            func=func, arguments=tuple(arguments), path=route_path,
            answer=TypeAdapter(answer) if answer not in (None, Any) else None, status_code=status_code)
        return True

    def answer(self, event: Mapping[str, Any], context: LambdaContext | None) -> dict[str, Any] | None:
        route = self._routes.get(str(event.get("routeKey", "")))
        if route is None:
            return None
        kwargs = self._arguments(route, event)
        if kwargs is None:
            return None
        proxy = use_request(event, context)
        try:
            response = self._response(route, route.func(**kwargs))
        except Exception as exc:  # the resolver's exception handlers answer through the same function
            response = self._answer_error(exc)
        if isinstance(response.body, bytes):
            # a JSON API: a server fault (the resolver refuses it too); answered here, not by handing the
            # request back after the route already ran
            response = self._answer_error(TypeError("a route answered bytes"))
        serializer = proxy.header_serializer()  # type: ignore[no-untyped-call]
        return {"statusCode": response.status_code, "body": response.body, "isBase64Encoded": False,
                **serializer.serialize(headers=response.headers, cookies=response.cookies)}

    def _arguments(self, route: _Route, event: Mapping[str, Any]) -> dict[str, Any] | None:
        path_values: Mapping[str, Any] = event.get("pathParameters") or {}
        query: Mapping[str, Any] = event.get("queryStringParameters") or {}
        headers: Mapping[str, Any] = event.get("headers") or {}
        try:
            if route.path.format_map(path_values) != event.get("rawPath"):
                return None
        except (KeyError, ValueError, IndexError):
            return None
        kwargs: dict[str, Any] = {}
        for argument in route.arguments:
            if argument.source == "path":
                raw = path_values.get(argument.key)
            elif argument.source == "query":
                raw = query.get(argument.key)
            else:
                raw = headers.get(argument.key)
            if raw is None:
                if argument.default is _MISSING:
                    return None
                kwargs[argument.name] = argument.default
                continue
            try:
                kwargs[argument.name] = argument.adapter.validate_python(raw)
            except ValidationError:
                return None
        return kwargs

    def _response(self, route: _Route, result: Any) -> Response[Any]:
        response = result if isinstance(result, Response) else Response(
            status_code=route.status_code, content_type=JSON, body=result)
        if route.answer is not None and response.is_json() and not isinstance(response.body, str | bytes):
            value = route.answer.validate_python(response.body)  # the declared answer, as the resolver checks
            response.body = route.answer.dump_json(value, by_alias=True).decode()
        return response
