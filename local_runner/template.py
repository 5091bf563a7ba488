"""What the runner reads from template.yaml: the functions (code directory, timeout, memory, async retries)
and the HTTP API routes with their authorizers, so there is no second route table to drift.

Routes are matched the way API Gateway HTTP APIs match them: a literal segment beats a `{param}` segment,
which beats a greedy `{param+}`; an exact method beats `ANY`; `$default` catches the rest. A path that
matches no route, or a route with another method, is 404 `{"message":"Not Found"}`.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import unquote

import yaml

ROOT = Path(__file__).resolve().parents[1]
TEMPLATE_PATH = ROOT / "template.yaml"
NO_AUTHORIZER = "NONE"


class _CfnLoader(yaml.SafeLoader):
    """Reads CloudFormation short-form tags (!Ref, !Sub, !GetAtt, ...) as their long-form dicts."""


def _construct_tag(loader: yaml.SafeLoader, suffix: str, node: yaml.Node) -> dict[str, Any]:
    name = suffix if suffix in ("Ref", "Condition") else f"Fn::{suffix}"
    value: Any
    if isinstance(node, yaml.ScalarNode):
        value = loader.construct_scalar(node)
        if suffix == "GetAtt" and isinstance(value, str):
            value = value.split(".", 1)
    elif isinstance(node, yaml.SequenceNode):
        value = loader.construct_sequence(node, deep=True)
    elif isinstance(node, yaml.MappingNode):
        value = loader.construct_mapping(node, deep=True)
    else:  # pragma: no cover - yaml has no other node kinds
        raise yaml.constructor.ConstructorError(None, None, f"unexpected node {node!r}", node.start_mark)
    return {name: value}


_CfnLoader.add_multi_constructor("!", _construct_tag)


def load_template(path: Path = TEMPLATE_PATH) -> dict[str, Any]:
    data = yaml.load(path.read_text(encoding="utf-8"), Loader=_CfnLoader)  # noqa: S506 - SafeLoader subclass
    if not isinstance(data, dict):
        raise ValueError(f"{path} is not a CloudFormation template")
    return data


@dataclass(frozen=True)
class Route:
    function: str  # the function's code directory name: generation, progress, ...
    method: str  # GET, POST, ... or ANY
    path: str  # /jobs/{job_id}, or $default
    authorizer: str | None  # None: public (Authorizer NONE)
    scopes: tuple[str, ...] = ()

    @property
    def route_key(self) -> str:
        return "$default" if self.path == "$default" else f"{self.method} {self.path}"

    @property
    def segments(self) -> list[str]:
        return [s for s in self.path.split("/")[1:]] if self.path != "$default" else []

    def match(self, method: str, raw_path: str) -> dict[str, str] | None:
        """Path parameters (URL-decoded) when this route serves `method raw_path`, else None."""
        if self.method not in ("ANY", method.upper()):
            return None
        if self.path == "$default":
            return {}
        parts = raw_path.split("/")[1:] if raw_path.startswith("/") else None
        if parts is None:
            return None
        params: dict[str, str] = {}
        segments = self.segments
        for index, segment in enumerate(segments):
            if segment.startswith("{") and segment.endswith("+}"):
                rest = parts[index:]
                if not rest or rest == [""]:
                    return None
                params[segment[1:-2]] = unquote("/".join(rest))
                return params
            if index >= len(parts):
                return None
            part = parts[index]
            if segment.startswith("{") and segment.endswith("}"):
                if part == "":
                    return None
                params[segment[1:-1]] = unquote(part)
            elif segment != part:
                return None
        return params if len(parts) == len(segments) else None

    def specificity(self) -> tuple[int, ...]:
        """Larger is more specific: literal (2) > {param} (1) > {greedy+} (0), segment by segment."""
        if self.path == "$default":
            return (-1,)
        ranks = [0 if s.endswith("+}") else 1 if s.startswith("{") else 2 for s in self.segments]
        return (*ranks, 1 if self.method != "ANY" else 0)


@dataclass(frozen=True)
class FunctionSpec:
    logical_id: str
    name: str  # code directory name
    code_dir: Path
    handler: str  # module.function, e.g. app.lambda_handler
    timeout_seconds: int
    memory_mb: int
    max_async_retries: int  # EventInvokeConfig.MaximumRetryAttempts (Lambda's default: 2)
    routes: tuple[Route, ...] = field(default_factory=tuple)

    @property
    def module_path(self) -> Path:
        module = self.handler.rsplit(".", 1)[0]
        return self.code_dir / (module.replace(".", "/") + ".py")

    @property
    def handler_function(self) -> str:
        return self.handler.rsplit(".", 1)[1]


def _resolve_int(value: Any, parameters: dict[str, Any], default: int) -> int:
    """A literal, or a !Ref to a parameter with a Default; anything else falls back to `default`."""
    if isinstance(value, dict) and set(value) == {"Ref"}:
        value = parameters.get(str(value["Ref"]), {}).get("Default")
    try:
        return int(value)
    except (TypeError, ValueError):
        return default


def _default_authorizer(template: dict[str, Any], api_ref: Any) -> str | None:
    resources = template.get("Resources", {})
    api_id = api_ref.get("Ref") if isinstance(api_ref, dict) else None
    apis = [resources[api_id]] if api_id in resources else [
        r for r in resources.values() if r.get("Type") == "AWS::Serverless::HttpApi"]
    for api in apis:
        auth = (api.get("Properties") or {}).get("Auth") or {}
        if auth.get("DefaultAuthorizer"):
            return str(auth["DefaultAuthorizer"])
    return None


def read_functions(template: dict[str, Any] | None = None, root: Path = ROOT) -> list[FunctionSpec]:
    template = template if template is not None else load_template(root / "template.yaml")
    parameters = template.get("Parameters", {})
    globals_ = (template.get("Globals") or {}).get("Function") or {}
    specs: list[FunctionSpec] = []
    for logical_id, resource in (template.get("Resources") or {}).items():
        if resource.get("Type") != "AWS::Serverless::Function":
            continue
        props = resource.get("Properties") or {}
        code_uri = props.get("CodeUri")
        if not isinstance(code_uri, str):
            continue
        code_dir = (root / code_uri).resolve()
        routes: list[Route] = []
        for event in (props.get("Events") or {}).values():
            if event.get("Type") != "HttpApi":
                continue
            ev = event.get("Properties") or {}
            auth = ev.get("Auth") or {}
            authorizer = auth.get("Authorizer") or _default_authorizer(template, ev.get("ApiId"))
            path = str(ev.get("Path") or "$default")
            method = str(ev.get("Method") or "ANY").upper()
            if method == "X-AMAZON-APIGATEWAY-ANY-METHOD":
                method = "ANY"
            routes.append(Route(
                function=code_dir.name, method=method, path=path,
                authorizer=None if authorizer in (None, NO_AUTHORIZER) else str(authorizer),
                scopes=tuple(str(s) for s in auth.get("AuthorizationScopes") or ()),
            ))
        invoke_config = props.get("EventInvokeConfig") or {}
        specs.append(FunctionSpec(
            logical_id=logical_id,
            name=code_dir.name,
            code_dir=code_dir,
            handler=str(props.get("Handler") or globals_.get("Handler") or "app.lambda_handler"),
            timeout_seconds=_resolve_int(props.get("Timeout", globals_.get("Timeout")), parameters, 3),
            memory_mb=_resolve_int(props.get("MemorySize", globals_.get("MemorySize")), parameters, 128),
            max_async_retries=_resolve_int(invoke_config.get("MaximumRetryAttempts"), parameters, 2),
            routes=tuple(routes),
        ))
    return specs


class RouteTable:
    def __init__(self, routes: list[Route]) -> None:
        keys = [r.route_key for r in routes]
        duplicates = sorted({k for k in keys if keys.count(k) > 1})
        if duplicates:
            raise ValueError(f"routes declared twice in template.yaml: {', '.join(duplicates)}")
        self.routes = sorted(routes, key=lambda r: r.specificity(), reverse=True)

    def match(self, method: str, raw_path: str) -> tuple[Route, dict[str, str]] | None:
        for route in self.routes:
            params = route.match(method, raw_path)
            if params is not None:
                return route, params
        return None
