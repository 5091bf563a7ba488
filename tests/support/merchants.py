"""Calling handlers as a merchant, the way API Gateway would after the JWT authorizer."""

from __future__ import annotations

from typing import Any

from tests.support.events import http_event, invoke, json_body


class MerchantClient:
    def __init__(self, handler_modules: dict[str, Any], merchant_id: str | None,
                 claims: dict[str, Any] | None = None) -> None:
        self.handlers = handler_modules
        self.merchant_id = merchant_id
        self.claims = claims

    def call(self, function: str, method: str, path: str, *, route: str | None = None,
             path_parameters: dict[str, str] | None = None, body: Any = None, raw_body: str | None = None,
             query: dict[str, str] | None = None,
             headers: dict[str, str] | None = None) -> tuple[int, Any, dict[str, str]]:
        event = http_event(method, path, route=route, path_parameters=path_parameters, body=body, raw_body=raw_body,
                           query=query, headers=headers, merchant_id=self.merchant_id, claims=self.claims)
        response = invoke(self.handlers[function], event)
        body_out = json_body(response) if response.get("body") else None
        return response["statusCode"], body_out, response.get("headers") or {}

    # generation function routes
    def create_persona(self, *, key: str | None = None, **fields: Any) -> tuple[int, Any, dict[str, str]]:
        return self.call("generation", "POST", "/personas", body={"name": "Pip", **fields},
                         headers={"Idempotency-Key": key} if key else None)

    def list_personas(self, **query: str) -> tuple[int, Any, dict[str, str]]:
        return self.call("generation", "GET", "/personas", query=query or None)

    def update_persona(self, persona_id: str, body: Any) -> tuple[int, Any, dict[str, str]]:
        return self.call("generation", "PATCH", f"/personas/{persona_id}", route="/personas/{persona_id}",
                         path_parameters={"persona_id": persona_id}, body=body)

    def get_persona(self, persona_id: str) -> tuple[int, Any, dict[str, str]]:
        return self.call("generation", "GET", f"/personas/{persona_id}", route="/personas/{persona_id}",
                         path_parameters={"persona_id": persona_id})

    def delete_persona(self, persona_id: str) -> tuple[int, Any, dict[str, str]]:
        return self.call("generation", "DELETE", f"/personas/{persona_id}", route="/personas/{persona_id}",
                         path_parameters={"persona_id": persona_id})

    def start_generation(self, persona_id: str, body: Any = None, *, key: str | None = None,
                         raw_body: str | None = None) -> tuple[int, Any, dict[str, str]]:
        return self.call("generation", "POST", f"/personas/{persona_id}/generations",
                         route="/personas/{persona_id}/generations", path_parameters={"persona_id": persona_id},
                         body=body, raw_body=raw_body, headers={"Idempotency-Key": key} if key else None)

    def start_state_videos(self, persona_id: str, body: Any = None) -> tuple[int, Any, dict[str, str]]:
        return self.call("generation", "POST", f"/personas/{persona_id}/state-videos",
                         route="/personas/{persona_id}/state-videos", path_parameters={"persona_id": persona_id},
                         body=body)

    def usage(self) -> tuple[int, Any, dict[str, str]]:
        return self.call("limits", "GET", "/usage")

    def usage_daily(self, **query: str) -> tuple[int, Any, dict[str, str]]:
        return self.call("limits", "GET", "/usage/daily", query=query or None)

    def usage_ledger(self, **query: str) -> tuple[int, Any, dict[str, str]]:
        return self.call("limits", "GET", "/usage/ledger", query=query or None)

    def list_jobs(self, **query: str) -> tuple[int, Any, dict[str, str]]:
        return self.call("progress", "GET", "/jobs", query=query or None)

    def get_job(self, job_id: Any) -> tuple[int, Any, dict[str, str]]:
        return self.call("progress", "GET", f"/jobs/{job_id}", route="/jobs/{job_id}",
                         path_parameters={"job_id": str(job_id)})

    # admin function routes (an operator: a token with the genjobs/admin scope)
    def admin(self, method: str, path: str, *, route: str | None = None, params: dict[str, str] | None = None,
              body: Any = None, query: dict[str, str] | None = None) -> tuple[int, Any, dict[str, str]]:
        return self.call("admin", method, path, route=route, path_parameters=params, body=body, query=query)
