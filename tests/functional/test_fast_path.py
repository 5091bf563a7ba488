"""The GET routes' fast path (genjobs.http.fast_path) answers exactly what the resolver answers, takes the
hot reads, and leaves every request it is not sure of to the resolver."""

from __future__ import annotations

import copy
import json
from typing import Any, cast

import pytest
from aws_lambda_powertools.event_handler import Response
from aws_lambda_powertools.event_handler.api_gateway import BaseRouter
from genjobs.http.resolver import create_resolver

from tests.support.events import http_event, invoke, lambda_context
from tests.support.handlers import HANDLERS
from tests.support.merchants import MerchantClient

HOT_READS = {
    "progress": {"GET /jobs/{job_id}", "GET /jobs", "GET /jobs/{job_id}/events", "GET /health"},
    "generation": {"GET /personas/{persona_id}", "GET /personas", "GET /models"},
    "limits": {"GET /usage", "GET /usage/daily", "GET /usage/ledger"},
    "admin": {"GET /admin/jobs", "GET /admin/models"},
}


def _answers(function: str, event: dict[str, Any]) -> tuple[dict[str, Any] | None, dict[str, Any], dict[str, Any]]:
    """(the fast path's own answer or None, the entry's answer, the resolver's answer) for one request."""
    module = HANDLERS[function]
    fast = module.app.fast_path.answer(copy.deepcopy(event), lambda_context(30.0))
    entry = invoke(module, copy.deepcopy(event))
    resolver = module.app.resolve(copy.deepcopy(event), lambda_context(30.0))
    return fast, entry, resolver


def _same(one: dict[str, Any], other: dict[str, Any]) -> None:
    assert one["statusCode"] == other["statusCode"]
    assert one.get("headers") == other.get("headers")
    assert (one.get("cookies") or []) == (other.get("cookies") or [])
    assert one.get("isBase64Encoded") == other.get("isBase64Encoded")
    assert json.loads(one["body"]) == json.loads(other["body"])


@pytest.fixture
def given(acme: MerchantClient) -> dict[str, str]:
    """A merchant with a persona and a queued job."""
    status, persona, _ = acme.create_persona(description="A cheerful robot")
    assert status == 201
    status, job, _ = acme.start_generation(persona["id"], {"variation_count": 2})
    assert status == 202
    return {"persona": persona["id"], "job": job["id"]}


def _get(path: str, *, route: str | None = None, params: dict[str, str] | None = None,
         query: dict[str, str] | None = None, headers: dict[str, str] | None = None,
         merchant: str | None = "acme", claims: dict[str, Any] | None = None) -> dict[str, Any]:
    return http_event("GET", path, route=route, path_parameters=params, query=query, headers=headers,
                      merchant_id=merchant, claims=claims)


def test_the_hot_reads_are_registered_with_the_fast_path() -> None:
    for function, keys in HOT_READS.items():
        assert keys <= HANDLERS[function].app.fast_path.route_keys, function
    # routes with a body never are
    assert not any(key.startswith(("POST", "PATCH", "PUT", "DELETE"))
                   for module in HANDLERS.values() for key in module.app.fast_path.route_keys)


def test_valid_reads_are_answered_by_the_fast_path_exactly_as_by_the_resolver(given: dict[str, str]) -> None:
    job, persona = given["job"], given["persona"]
    cases = [
        ("progress", _get(f"/jobs/{job}", route="/jobs/{job_id}", params={"job_id": job})),
        ("progress", _get(f"/jobs/{job}", route="/jobs/{job_id}", params={"job_id": job},
                          headers={"If-None-Match": 'W/"999"'})),
        ("progress", _get(f"/jobs/{job}", route="/jobs/{job_id}", params={"job_id": job}, query={"wait": "0"})),
        ("progress", _get("/jobs", query={"limit": "1"})),
        ("progress", _get("/jobs", query={"status": "queued,failed", "persona_id": persona})),
        ("progress", _get("/jobs", query={"created_after": "2020-01-01T00:00:00Z",
                                          "job_type": "character_variations"})),
        ("progress", _get(f"/jobs/{job}/events", route="/jobs/{job_id}/events", params={"job_id": job})),
        ("generation", _get(f"/personas/{persona}", route="/personas/{persona_id}",
                            params={"persona_id": persona})),
        ("generation", _get("/personas", query={"limit": "5"})),
        ("generation", _get("/models")),
        ("limits", _get("/usage")),
    ]
    for function, event in cases:
        # When the same request reaches the fast path, the entry and the resolver
        fast, entry, resolver = _answers(function, event)
        # Then the fast path answered it, and all three answers are the same
        assert fast is not None, event["routeKey"]
        assert 200 <= fast["statusCode"] < 300, fast
        _same(fast, resolver)
        _same(entry, resolver)


def test_errors_a_route_raises_are_the_resolvers_errors(given: dict[str, str], globex: MerchantClient) -> None:
    job = given["job"]
    unknown = "00000000-0000-4000-8000-000000000000"
    cases = [
        # a job that does not exist, and one that is another merchant's: 404 from the service
        ("progress", _get(f"/jobs/{unknown}", route="/jobs/{job_id}", params={"job_id": unknown}), 404),
        ("progress", _get(f"/jobs/{job}", route="/jobs/{job_id}", params={"job_id": job}, merchant="globex"), 404),
        # no merchant claim: 401 from the route
        ("progress", _get(f"/jobs/{job}", route="/jobs/{job_id}", params={"job_id": job}, merchant=None), 401),
        # a time without its offset: 422 from the route
        ("progress", _get("/jobs", query={"created_after": "2026-01-01T00:00:00"}), 422),
        # an operator route without the scope: 403
        ("admin", _get("/admin/jobs"), 403),
    ]
    for function, event, status in cases:
        fast, entry, resolver = _answers(function, event)
        assert fast is not None, event
        assert fast["statusCode"] == status, fast
        _same(fast, resolver)
        _same(entry, resolver)


def test_requests_the_fast_path_is_not_sure_of_go_to_the_resolver(given: dict[str, str]) -> None:
    job = given["job"]
    cases = [
        ("progress", _get("/jobs/not-a-uuid", route="/jobs/{job_id}", params={"job_id": "not-a-uuid"})),
        ("progress", _get(f"/jobs/{job}", route="/jobs/{job_id}", params={"job_id": job}, query={"wait": "99"})),
        ("progress", _get(f"/jobs/{job}", route="/jobs/{job_id}", params={"job_id": job}, query={"wait": "soon"})),
        ("progress", _get("/jobs", query={"limit": "0"})),
        ("progress", _get("/jobs", query={"status": "x" * 201})),
        ("progress", _get("/jobs", query={"persona_id": "nope"})),
        ("progress", _get("/jobs", query={"job_type": "sculpture"})),
        # the raw path does not spell the path parameter (percent-encoded): the resolver reads the raw path
        ("progress", _get(f"/jobs/{job.replace('-', '%2D')}", route="/jobs/{job_id}", params={"job_id": job})),
        # a route API Gateway did not name
        ("progress", {**_get(f"/jobs/{job}"), "routeKey": "$default"}),
    ]
    for function, event in cases:
        fast, entry, resolver = _answers(function, event)
        # Then the fast path declines, and the entry's answer is the resolver's
        assert fast is None, event
        _same(entry, resolver)
    # the invalid ones are the resolver's 422s, with its error body
    fast, entry, _ = _answers("progress", cases[0][1])
    assert entry["statusCode"] == 422
    assert json.loads(entry["body"])["error"]["code"] == "VALIDATION_ERROR"


def test_powertools_keeps_the_request_where_the_fast_path_puts_it(given: dict[str, str]) -> None:
    """genjobs.http.fast_path.use_request sets the request where powertools' resolve() does (class attributes
    of BaseRouter, read by the routes through app.current_event). If powertools moves them, this fails and
    use_request must follow."""
    event = _get("/usage")
    context = lambda_context(30.0)
    HANDLERS["limits"].app.resolve(event, context)
    assert BaseRouter.current_event.raw_event == event
    assert BaseRouter.lambda_context is cast(Any, context)
    assert HANDLERS["limits"].app.current_event is BaseRouter.current_event


def test_bytes_answers_are_left_to_the_resolver_or_a_500_without_running_the_route_twice() -> None:
    """No genjobs route answers bytes. One that declares bytes is left to the resolver; one that answers bytes
    anyway is a server fault: a 500 from the fast path (the resolver's response validation calls it a 422), the
    route having run once."""
    app = create_resolver()
    calls: list[str] = []

    @app.get("/blob")
    def blob() -> Response[bytes]:
        return Response(status_code=200, content_type="application/octet-stream", body=b"\x89PNG")

    @app.get("/text")
    def text() -> Response[str]:
        calls.append("text")
        return Response(status_code=200, content_type="application/octet-stream", body=cast(Any, b"\x89PNG"))

    context = cast(Any, lambda_context(30.0))
    assert "GET /blob" not in app.fast_path.route_keys
    assert app.fast_path.answer(_get("/blob"), context) is None
    fast = app.fast_path.answer(_get("/text"), context)
    assert calls == ["text"]
    assert fast is not None and fast["statusCode"] == 500
    assert json.loads(fast["body"])["error"]["code"] == "INTERNAL_ERROR"
    assert app.resolve(_get("/text"), context)["statusCode"] >= 400  # the resolver refuses it too
