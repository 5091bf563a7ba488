"""One OpenAPI 3.1 document for the whole HTTP API, merged from what each function's resolver generates
(powertools, from the route signatures and pydantic models), restricted to the routes template.yaml
declares, with the JWT bearer scheme on every route the authorizer protects.

Served by the runner at /openapi.json with Swagger UI at /docs (the Swagger UI files come with powertools, so
the page works offline); `make openapi` writes it to docs/openapi.json, and a test fails when that file is
stale.
"""

from __future__ import annotations

import copy
import json
import tomllib
from collections.abc import Mapping
from pathlib import Path
from types import ModuleType
from typing import Any

from local_runner.template import ROOT, FunctionSpec, Route

DOCUMENT_PATH = ROOT / "docs" / "openapi.json"
SECURITY_SCHEME = "bearerAuth"
GATEWAY_401 = ("API Gateway: no token, or an invalid or expired one; the body is "
               '`{"message":"Unauthorized"}` and the function is not called')
DESCRIPTION = """\
Generation jobs for merchant personas: character variations, approval, state videos, with progress, limits
and costs. Every route except `GET /health` needs `Authorization: Bearer <JWT>`; the merchant is the token's
`merchant_id` claim. Errors look like `{"error": {"code": "...", "message": "...", "details": {}}}`.
Locally, `make token MERCHANT=acme` prints a token (HS256, `LOCAL_JWT_SECRET`). The operator routes
(`/admin/...`) also need the OAuth scope `genjobs/admin` in the token's `scope` claim (403 without it):
`make token MERCHANT=ops SCOPE=genjobs/admin`."""

_GATEWAY_MESSAGE_REF = {"$ref": "#/components/schemas/GatewayMessage"}


class OpenAPIConflict(ValueError):
    pass


def project_version(root: Path = ROOT) -> str:
    data = tomllib.loads((root / "pyproject.toml").read_text(encoding="utf-8"))
    return str(data.get("project", {}).get("version", "0.0.0"))


def _function_schema(module: ModuleType, title: str, version: str) -> dict[str, Any] | None:
    app = getattr(module, "app", None)
    if app is None or not hasattr(app, "get_openapi_schema"):
        return None
    schema = app.get_openapi_schema(title=title, version=version)
    dumped: dict[str, Any] = schema.model_dump(mode="json", by_alias=True, exclude_none=True)
    return dumped


GATEWAY_403 = ("API Gateway: the token lacks the route's scope ({scopes}); the body is "
               '`{{"message":"Forbidden"}}` and the function is not called')


def _protect(operation: dict[str, Any], scopes: tuple[str, ...] = ()) -> None:
    # OpenAPI 3.1 lets a non-OAuth scheme list the roles an operation needs: Swagger UI shows them
    operation["security"] = [{SECURITY_SCHEME: list(scopes)}]
    responses = operation.setdefault("responses", {})
    if scopes:
        forbidden = GATEWAY_403.format(scopes=", ".join(scopes))
        existing_403 = responses.get("403")
        if existing_403 is None:
            responses["403"] = {"description": forbidden,
                                "content": {"application/json": {"schema": dict(_GATEWAY_MESSAGE_REF)}}}
        else:
            existing_403["description"] = f"{existing_403.get('description', '').rstrip('.')}. Also {forbidden}"
            for media in (existing_403.get("content") or {}).values():
                schema = media.get("schema")
                if schema is not None and schema != _GATEWAY_MESSAGE_REF:
                    media["schema"] = {"anyOf": [schema, dict(_GATEWAY_MESSAGE_REF)]}
        operation["description"] = (f"**Scope: {', '.join(scopes)}.** " + operation.get("description", "")).strip()
    existing = responses.get("401")
    if existing is None:
        responses["401"] = {
            "description": GATEWAY_401,
            "content": {"application/json": {"schema": dict(_GATEWAY_MESSAGE_REF)}},
        }
    elif GATEWAY_401 not in existing.get("description", ""):
        existing["description"] = f"{existing.get('description', '').rstrip('.')}. Also {GATEWAY_401}"
        # The function's own 401 (an error body) or API Gateway's (a message): the schema admits both.
        for media in (existing.get("content") or {}).values():
            schema = media.get("schema")
            if schema is not None and schema != _GATEWAY_MESSAGE_REF:
                media["schema"] = {"anyOf": [schema, dict(_GATEWAY_MESSAGE_REF)]}
    responses_sorted = dict(sorted(responses.items()))
    responses.clear()
    responses.update(responses_sorted)


def _merge_paths(spec: FunctionSpec, schema: dict[str, Any], routes: Mapping[tuple[str, str], Route],
                 paths: dict[str, dict[str, Any]], notes: list[str]) -> bool:
    """Add the function's operations that template.yaml routes to it; True when it documented any."""
    documented = False
    for path, item in (schema.get("paths") or {}).items():
        for method, generated in item.items():
            route = routes.get((method, path))
            if route is None or route.function != spec.name:
                notes.append(f"{method.upper()} {path} is served by {spec.name} but not routed by template.yaml")
                continue
            operation = copy.deepcopy(generated)
            operation["tags"] = [spec.name]
            if route.authorizer:
                _protect(operation, route.scopes)
            else:
                operation["security"] = []
            if method in paths.get(path, {}):
                raise OpenAPIConflict(f"{method.upper()} {path} is documented by two functions")
            paths.setdefault(path, {})[method] = operation
            documented = True
    return documented


def _merge_components(spec: FunctionSpec, schema: dict[str, Any], components: dict[str, dict[str, Any]]) -> None:
    for kind, entries in (schema.get("components") or {}).items():
        target = components.setdefault(kind, {})
        for name, definition in entries.items():
            if name in target and target[name] != definition:
                raise OpenAPIConflict(f"components.{kind}.{name} differs between functions ({spec.name})")
            target[name] = definition


def build_document(specs: list[FunctionSpec], modules: Mapping[str, ModuleType], *, title: str = "genjobs",
                   version: str | None = None, descriptions: Mapping[str, str] | None = None
                   ) -> tuple[dict[str, Any], list[str]]:
    """(document, notes): notes name resolver routes the template does not route (left out of the document)
    and template routes no resolver documents."""
    version = version or project_version()
    routes = {(r.method.lower(), r.path): r for s in specs for r in s.routes}
    paths: dict[str, dict[str, Any]] = {}
    components: dict[str, dict[str, Any]] = {"schemas": {
        "GatewayMessage": {
            "type": "object", "title": "GatewayMessage", "required": ["message"],
            "properties": {"message": {"type": "string", "title": "Message"}},
            "description": "A response of API Gateway itself (401 Unauthorized, 404 Not Found, 500).",
        },
    }}
    notes: list[str] = []
    tags: list[dict[str, str]] = []
    for spec in sorted(specs, key=lambda s: s.name):
        module = modules.get(spec.name)
        schema = _function_schema(module, title, version) if module is not None else None
        if schema is None:
            continue
        if _merge_paths(spec, schema, routes, paths, notes):
            tag = {"name": spec.name}
            if descriptions and descriptions.get(spec.name):
                tag["description"] = descriptions[spec.name]
            tags.append(tag)
        _merge_components(spec, schema, components)
    for (method, path), route in sorted(routes.items(), key=lambda kv: (kv[0][1], kv[0][0])):
        if method not in paths.get(path, {}):
            notes.append(f"{route.route_key} is routed to {route.function} by template.yaml but its resolver "
                         "does not document it")

    components.setdefault("securitySchemes", {})[SECURITY_SCHEME] = {
        "type": "http", "scheme": "bearer", "bearerFormat": "JWT",
        "description": "A JWT whose `merchant_id` claim names the merchant (API Gateway JWT authorizer). "
                       "Locally: `make token MERCHANT=acme`.",
    }
    document: dict[str, Any] = {
        "openapi": "3.1.0",
        "info": {"title": title, "version": version, "description": DESCRIPTION},
        "servers": [{"url": "/"}],
        "paths": {p: paths[p] for p in sorted(paths)},
        "components": {k: dict(sorted(v.items())) for k, v in sorted(components.items())},
        "security": [{SECURITY_SCHEME: []}],
        "tags": tags,
    }
    _validate(document)
    return document, notes


def _validate(document: dict[str, Any]) -> None:
    from aws_lambda_powertools.event_handler.openapi.models import OpenAPI

    OpenAPI.model_validate(document)


def render(document: Mapping[str, Any]) -> str:
    return json.dumps(document, indent=2, ensure_ascii=False) + "\n"


def load_modules(specs: list[FunctionSpec]) -> dict[str, ModuleType]:
    """One fresh copy of each function module (no database needed: handlers connect lazily)."""
    from local_runner.lambdas import FunctionPool

    return {spec.name: FunctionPool(spec, f"genjobs-{spec.name}").warm().module for spec in specs
            if spec.routes and spec.module_path.exists()}


def function_descriptions(template: Mapping[str, Any], specs: list[FunctionSpec]) -> dict[str, str]:
    resources = template.get("Resources") or {}
    out: dict[str, str] = {}
    for spec in specs:
        description = ((resources.get(spec.logical_id) or {}).get("Properties") or {}).get("Description")
        if isinstance(description, str):
            out[spec.name] = description
    return out


def swagger_assets_dir() -> Path:
    from aws_lambda_powertools.event_handler.openapi import swagger_ui

    return Path(swagger_ui.__file__).resolve().parent


SWAGGER_ASSETS = {"swagger-ui-bundle.min.js": "application/javascript", "swagger-ui.min.css": "text/css"}

SWAGGER_HTML = """<!DOCTYPE html>
<html lang="en">
<head>
  <meta charset="utf-8">
  <title>genjobs API (local)</title>
  <meta http-equiv="Cache-control" content="no-cache, no-store, must-revalidate">
  <link rel="stylesheet" type="text/css" href="/docs/swagger-ui.min.css">
</head>
<body>
  <div id="swagger-ui">Loading…</div>
  <script src="/docs/swagger-ui-bundle.min.js"></script>
  <script>
    window.ui = SwaggerUIBundle({
      url: "/openapi.json",
      dom_id: "#swagger-ui",
      deepLinking: true,
      docExpansion: "list",
      filter: true,
      persistAuthorization: true,
      tryItOutEnabled: true,
      displayRequestDuration: true,
      presets: [SwaggerUIBundle.presets.apis],
      layout: "BaseLayout",
    });
  </script>
</body>
</html>
"""
