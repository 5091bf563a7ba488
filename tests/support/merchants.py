"""Calling handlers as a merchant, the way API Gateway would after the JWT authorizer."""

from __future__ import annotations

from typing import Any

from tests.support.events import http_event, invoke, json_body


class MerchantClient:
    def __init__(self, handler_modules: dict[str, Any], merchant_id: str | None) -> None:
        self.handlers = handler_modules
        self.merchant_id = merchant_id

    def call(self, function: str, method: str, path: str, *, route: str | None = None,
             path_parameters: dict[str, str] | None = None, body: Any = None, raw_body: str | None = None,
             query: dict[str, str] | None = None,
             headers: dict[str, str] | None = None) -> tuple[int, Any, dict[str, str]]:
        event = http_event(method, path, route=route, path_parameters=path_parameters, body=body, raw_body=raw_body,
                           query=query, headers=headers, merchant_id=self.merchant_id)
        response = invoke(self.handlers[function], event)
        body_out = json_body(response) if response.get("body") else None
        return response["statusCode"], body_out, response.get("headers") or {}

    # generation function routes
    def create_persona(self, **fields: Any) -> tuple[int, Any, dict[str, str]]:
        return self.call("generation", "POST", "/personas", body={"name": "Pip", **fields})

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
