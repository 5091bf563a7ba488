"""The merged OpenAPI document: docs/openapi.json is what the handlers generate today (`make openapi`
rewrites it), every route of template.yaml is in it, protected routes carry the bearer scheme, and the
runner serves the same document."""

from __future__ import annotations

import json
from typing import Any

from local_runner.openapi import DOCUMENT_PATH, build_document, function_descriptions, load_modules, render
from local_runner.template import load_template, read_functions
from tests.support.runner_process import RunnerProcess, request

METHODS = {"get", "put", "post", "delete", "patch", "head", "options", "trace"}


def _generate() -> tuple[dict[str, Any], list[str]]:
    template = load_template()
    specs = read_functions(template)
    return build_document(specs, load_modules(specs), descriptions=function_descriptions(template, specs))


def test_docs_openapi_json_is_up_to_date() -> None:
    document, _ = _generate()
    assert DOCUMENT_PATH.exists(), "docs/openapi.json is missing: run `make openapi`"
    current = DOCUMENT_PATH.read_text(encoding="utf-8")
    assert current == render(document), "docs/openapi.json is stale: run `make openapi` and commit it"


def test_every_template_route_is_documented_and_only_those() -> None:
    document, notes = _generate()
    routes = {(r.method.lower(), r.path) for spec in read_functions() for r in spec.routes}
    documented = {(m, p) for p, item in document["paths"].items() for m in item if m in METHODS}
    assert documented == routes, notes
    assert not notes, notes


def test_security_follows_the_authorizer() -> None:
    document, _ = _generate()
    assert document["openapi"] == "3.1.0"
    scheme = document["components"]["securitySchemes"]["bearerAuth"]
    assert scheme == {**scheme, "type": "http", "scheme": "bearer", "bearerFormat": "JWT"}
    public = {(r.method.lower(), r.path) for spec in read_functions() for r in spec.routes if not r.authorizer}
    for path, item in document["paths"].items():
        for method, operation in item.items():
            if (method, path) in public:
                assert operation["security"] == [], (method, path)
                assert "401" not in operation["responses"] or path != "/health"
            else:  # the operator routes also name their scope (below)
                scopes = ["genjobs/admin"] if path.startswith("/admin/") else []
                assert operation["security"] == [{"bearerAuth": scopes}], (method, path)
                assert "401" in operation["responses"], (method, path)


def test_every_reference_resolves() -> None:
    document, _ = _generate()
    text = json.dumps(document)
    schemas = document["components"]["schemas"]
    for ref in {part.split('"')[0] for part in text.split('"$ref": "')[1:]}:
        assert ref.startswith("#/components/schemas/"), ref
        assert ref.removeprefix("#/components/schemas/") in schemas, ref


def test_the_runner_serves_the_same_document(runner: RunnerProcess) -> None:
    reply = request(runner.base_url, "GET", "/openapi.json")
    assert reply.status == 200
    document, _ = _generate()
    assert reply.json == document


def test_every_operation_documents_its_success_and_the_gateway_401() -> None:
    # found by the fuzz: routes declaring `responses=` lost their 200 (powertools then adds none), and the
    # authorizer's own 401 body did not match the documented error body
    document, _ = _generate()
    gateway = {"$ref": "#/components/schemas/GatewayMessage"}
    for path, item in document["paths"].items():
        for method, operation in item.items():
            responses = operation["responses"]
            assert [s for s in responses if s.startswith("2")], (method, path)
            if "401" in responses:
                schema = responses["401"]["content"]["application/json"]["schema"]
                assert schema == gateway or gateway in schema.get("anyOf", []), (method, path, schema)
    deleted = document["paths"]["/personas/{persona_id}"]["delete"]["responses"]["204"]
    assert deleted.get("content") == {}  # no body


def test_every_operation_has_a_real_summary_a_description_and_body_examples() -> None:
    """Swagger UI shows the summary beside each path: it must say what the route does, not repeat the path."""
    document, _ = _generate()
    for path, item in document["paths"].items():
        for method, operation in item.items():
            where = f"{method.upper()} {path}"
            summary = operation.get("summary", "")
            assert summary and summary != path and "/" not in summary.split()[0], where
            assert len(operation.get("description", "")) > len(summary), where
            body = operation.get("requestBody")
            if body is not None:
                schema = body["content"]["application/json"]["schema"]
                ref = schema.get("$ref") or next(s["$ref"] for s in schema.get("anyOf", []) if "$ref" in s)
                model = document["components"]["schemas"][ref.rsplit("/", 1)[1]]
                assert model.get("examples"), f"{where}: {ref} has no example"


def test_operator_routes_show_their_scope_and_the_gateway_403() -> None:
    document, _ = _generate()
    for path, item in document["paths"].items():
        for method, operation in item.items():
            where = f"{method.upper()} {path}"
            if path.startswith("/admin/"):
                assert operation["security"] == [{"bearerAuth": ["genjobs/admin"]}], where
                assert operation["description"].startswith("**Scope: genjobs/admin.**"), where
                assert "Forbidden" in operation["responses"]["403"]["description"], where
            else:
                assert operation["security"] in ([{"bearerAuth": []}], []), where
