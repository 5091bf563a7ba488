"""genjobs.http.resolver memoizes powertools' per-request scalar check of route parameters (issue 18). These
tests fail when the memo is no longer needed (powertools caches the check itself) or no longer applies (the
validation middleware stops calling it by that name): then genjobs.http.resolver.cache_scalar_checks goes."""

from __future__ import annotations

from typing import Annotated, Any

import pytest
from aws_lambda_powertools.event_handler.middlewares import openapi_validation
from aws_lambda_powertools.event_handler.openapi import compat
from aws_lambda_powertools.event_handler.openapi.params import Query
from genjobs.http.resolver import cache_scalar_checks, create_resolver

from tests.support.events import http_event


def _route_app() -> Any:
    app = create_resolver()

    @app.get("/things")
    def things(limit: Annotated[int, Query(ge=1, le=50)] = 10) -> dict[str, int]:
        return {"limit": limit}

    return app


def _get(app: Any, query: dict[str, str]) -> dict[str, Any]:
    event = http_event("GET", "/things", query=query, merchant_id="acme")
    result: dict[str, Any] = app.resolve(event, None)
    return result


def test_powertools_still_reinspects_annotations_on_every_check(monkeypatch: pytest.MonkeyPatch) -> None:
    # Given powertools' own scalar check and a counter on the annotation inspection it runs
    cache_scalar_checks()
    original = _scalar_check().__wrapped__
    inspections: list[Any] = []
    inspect = compat.field_annotation_is_scalar

    def counting(annotation: Any) -> bool:
        inspections.append(annotation)
        return inspect(annotation)

    monkeypatch.setattr(compat, "field_annotation_is_scalar", counting)
    field = compat.ModelField(field_info=Query(annotation=int), name="limit")

    # When it checks the same parameter twice
    answers = [original(field), original(field)]

    # Then it inspected the annotation twice: powertools does not cache it (if this fails, it does: remove
    # cache_scalar_checks from genjobs.http.resolver)
    assert answers == [True, True]
    assert len(inspections) == 2


def test_the_validation_middleware_asks_the_memoized_check_once_per_parameter(
        monkeypatch: pytest.MonkeyPatch) -> None:
    # Given a resolver made by genjobs (request validation on) with one query parameter
    app = _route_app()
    memoized = _scalar_check()
    assert hasattr(memoized, "__wrapped__"), "the validation middleware no longer calls is_scalar_field"
    calls: list[Any] = []
    original = memoized.__wrapped__

    def counting(field: Any) -> bool:
        calls.append(field)
        return bool(original(field))

    monkeypatch.setattr(openapi_validation, "is_scalar_field", _fresh_memo(counting))

    # When three requests come, one of them invalid
    answers = [_get(app, {"limit": "5"}), _get(app, {"limit": "7"}), _get(app, {"limit": "abc"})]

    # Then they were validated as before (the invalid one is a 422) and the parameter was inspected once
    assert [a["statusCode"] for a in answers] == [200, 200, 422]
    assert [c.name for c in calls] == ["limit"]


def _scalar_check() -> Any:
    """The check the validation middleware calls (by its module global, which powertools does not export)."""
    return vars(openapi_validation)["is_scalar_field"]


def _fresh_memo(check: Any) -> Any:
    from genjobs.http import resolver

    return resolver._memoized_per_field(check)
