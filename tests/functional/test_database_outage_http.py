"""Database stopped mid-suite: every HTTP route of every function answers 503 with Retry-After, fast and
without a stack trace; after a restart the same process serves them again."""

from __future__ import annotations

import re
import time
import uuid
from collections.abc import Iterator
from typing import Any

import pytest
from genjobs import dependencies
from genjobs.db import Database
from genjobs.db.migrations import migrate

from tests.support.database import make_database, set_database
from tests.support.events import http_event, invoke
from tests.support.fakes import RecordingInvoker
from tests.support.handlers import HANDLERS
from tests.support.postgres import EmbeddedServerControl

CONNECT_TIMEOUT = 1.0

# A valid body for each route that takes one, so the request reaches the database.
SAMPLE_BODIES: dict[tuple[str, str], Any] = {
    ("POST", "/personas"): {"name": "Pip"},
    ("POST", "/personas/{persona_id}/generations"): {"variation_count": 1},
    ("POST", "/personas/{persona_id}/state-videos"): {"states": ["idle"]},
    ("POST", "/personas/{persona_id}/approve-variation"): {"variation_id": str(uuid.uuid4())},
    ("PATCH", "/personas/{persona_id}"): {"name": "Pip II"},
    ("POST", "/admin/prompt-templates"): {"job_type": "state_videos", "name": "n", "template": "${name} ${state}"},
    ("POST", "/admin/prompt-templates/preview"): {"template_id": str(uuid.uuid4())},
    ("PATCH", "/admin/merchants/{merchant_id}"): {"monthly_budget_usd": None},
    ("PATCH", "/admin/models/{model_id}"): {"enabled": True},
    ("POST", "/webhooks"): {"url": "https://hooks.example.com/genjobs"},
    ("PATCH", "/webhooks/{webhook_id}"): {"description": "paused"},
}
# the operator routes need the admin scope (the handler checks it before any read)
OPERATOR_CLAIMS = {"sub": "operator-ann", "scope": "genjobs/admin"}


def http_routes() -> list[tuple[str, str, str]]:
    routes: list[tuple[str, str, str]] = []
    for function, module in HANDLERS.items():
        schema = module.app.get_openapi_schema().model_dump(mode="json", by_alias=True, exclude_none=True)
        for path, operations in schema["paths"].items():
            routes.extend((function, method.upper(), path) for method in operations)
    return sorted(routes)


def request_for(method: str, route: str) -> dict[str, Any]:
    params = {name: str(uuid.uuid4()) for name in re.findall(r"{(\w+)}", route)}
    path = route.format(**params)
    return http_event(method, path, route=route, path_parameters=params or None,
                      body=SAMPLE_BODIES.get((method, route)), merchant_id="acme",
                      claims=OPERATOR_CLAIMS if route.startswith("/admin/") else None)


@pytest.fixture(scope="module")
def migrated_outage() -> Iterator[tuple[EmbeddedServerControl, Database]]:
    """A dedicated, migrated server shared by this module's tests, which stop and restart it; the handlers use
    it, and dispatch to a RecordingInvoker."""
    control = EmbeddedServerControl()
    database = make_database(control.url, connect_timeout_seconds=CONNECT_TIMEOUT, pool_max_size=2)
    migrate(database)
    previous = set_database(database)
    dependencies.override(invoker=RecordingInvoker())
    yield control, database
    dependencies.reset()
    set_database(previous)
    database.close()
    control.close()


def test_every_function_serves_http_routes() -> None:
    functions = {function for function, _, _ in http_routes()}
    assert {"generation", "progress", "limits"} <= functions


def test_every_route_is_503_while_the_database_is_down_and_recovers(
        migrated_outage: tuple[EmbeddedServerControl, Database]) -> None:
    control, _ = migrated_outage
    routes = http_routes()
    # Given the database stops while the process keeps running
    control.stop()
    try:
        for function, method, route in routes:
            started = time.monotonic()
            response = invoke(HANDLERS[function], request_for(method, route))
            elapsed = time.monotonic() - started
            # Then each route answers 503 with Retry-After, within the connect timeout, without a trace
            assert response["statusCode"] == 503, (method, route, response.get("body"))
            assert int(response["headers"]["Retry-After"]) > 0, (method, route)
            assert "Traceback" not in response["body"] and '"SERVICE_UNAVAILABLE"' in response["body"]
            assert elapsed < CONNECT_TIMEOUT + 1.5, (method, route, elapsed)
    finally:
        # When it comes back
        control.start()
    # Then the same process serves every route again (no 5xx)
    for function, method, route in routes:
        response = invoke(HANDLERS[function], request_for(method, route))
        assert response["statusCode"] < 500, (method, route, response.get("body"))
