"""The lowest dependency versions the requirements allow still run the functions.

`make floors` installs exactly the floor of every runtime requirement (`name>=X` → `name==X`, from
pyproject.toml) into its own venv (.venv-floors) and runs this script there: it imports every function, builds
each resolver's OpenAPI document, and sends each function an HTTP request and a direct invocation that are
answered without a database (validation errors), so an API that a floor version lacks fails here, not in a
deploy that happened to resolve an older version.
"""

from __future__ import annotations

import importlib
import json
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT / "layers" / "shared"), str(ROOT)]

FUNCTIONS = ["generation", "progress", "limits", "approval", "maintenance", "migrate", "webhooks", "webhook_sender"]


class Context:
    function_name = "floors"
    memory_limit_in_mb = 128
    invoked_function_arn = "arn:aws:lambda:us-east-1:123456789012:function:floors"
    aws_request_id = "floors"

    def get_remaining_time_in_millis(self) -> int:
        return 30_000


def http_event(method: str, path: str, route: str, body: str | None = None) -> dict[str, object]:
    return {
        "version": "2.0", "routeKey": f"{method} {route}", "rawPath": path, "rawQueryString": "",
        "headers": {"content-type": "application/json"}, "body": body, "isBase64Encoded": False,
        "requestContext": {"http": {"method": method, "path": path, "sourceIp": "127.0.0.1"},
                           "requestId": "floors", "routeKey": f"{method} {route}", "stage": "$default",
                           "authorizer": {"jwt": {"claims": {"merchant_id": "floors"}, "scopes": None}}},
        "pathParameters": {"persona_id": "not-a-uuid", "job_id": "not-a-uuid"},
    }


def main() -> int:
    import aws_lambda_powertools
    import psycopg
    import pydantic
    import pydantic_settings

    print("versions:", {"powertools": aws_lambda_powertools.__version__ if hasattr(aws_lambda_powertools,
                                                                                    "__version__") else "?",
                        "pydantic": pydantic.VERSION, "pydantic-settings": pydantic_settings.__version__,
                        "psycopg": psycopg.__version__})
    failures: list[str] = []
    for name in FUNCTIONS:
        module = importlib.import_module(f"functions.{name}.app")
        handler = module.lambda_handler
        answer = handler({"action": "no_such_action"}, Context())
        if not (isinstance(answer, dict) and answer.get("ok") is False
                and answer["error"]["code"] in ("VALIDATION_ERROR", "UNSUPPORTED_EVENT")):
            failures.append(f"{name}: direct invoke answered {answer!r}")
        app = getattr(module, "app", None)
        if app is not None:
            json.dumps(app.get_openapi_schema().model_dump(mode="json", by_alias=True, exclude_none=True))
            routes = {"generation": ("POST", "/personas/not-a-uuid/generations", "/personas/{persona_id}/generations",
                                     '{"variation_count": 9}'),
                      "progress": ("GET", "/jobs/not-a-uuid", "/jobs/{job_id}", None),
                      "approval": ("POST", "/personas/not-a-uuid/approve-variation",
                                   "/personas/{persona_id}/approve-variation", "{}"),
                      "limits": ("POST", "/usage", "/usage", "not json"),
                      "webhooks": ("GET", "/webhooks/not-a-uuid", "/webhooks/{webhook_id}", None)}
            method, path, route, body = routes[name]
            reply = handler(http_event(method, path, route, body), Context())
            if reply.get("statusCode") not in (400, 404, 405, 422):
                failures.append(f"{name}: {method} {path} answered {reply.get('statusCode')}: {reply.get('body')}")
        print(f"{name}: ok" if not any(f.startswith(name) for f in failures) else f"{name}: FAILED")
    for failure in failures:
        print(failure, file=sys.stderr)
    return 1 if failures else 0


if __name__ == "__main__":
    raise SystemExit(main())
