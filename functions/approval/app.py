"""Approval function: variation listing and approval (HTTP) and `approve_variation` (direct invoke)."""

from __future__ import annotations

from datetime import timedelta
from typing import Annotated, Any
from uuid import UUID

from aws_lambda_powertools import Logger
from aws_lambda_powertools.event_handler.openapi.params import Body, Query
from aws_lambda_powertools.logging import correlation_paths
from aws_lambda_powertools.utilities.typing import LambdaContext
from genjobs.clock import utc_now
from genjobs.config import get_config
from genjobs.db import get_database
from genjobs.http.app import create_resolver, merchant_id_from
from genjobs.http.openapi import error_responses, success_response
from genjobs.invocation import event_kind, handle_direct_invoke
from genjobs.models.approval import ApprovalAction, ApproveVariationAction, ApproveVariationRequest, VariationList
from genjobs.models.personas import Persona
from genjobs.services import approval
from pydantic import TypeAdapter

logger = Logger(service="genjobs-approval")
app = create_resolver()


def _merchant() -> str:
    return merchant_id_from(app, get_config().merchant_claim)


def _cooldown() -> timedelta:
    return timedelta(hours=get_config().regeneration_cooldown_hours)


@app.get("/personas/<persona_id>/variations",
         responses={**success_response(200, "The variations", VariationList), **error_responses(404)})
def list_variations(
    persona_id: UUID,
    job_id: Annotated[UUID | None, Query(description="a variations job of the persona; default: its latest")] = None,
) -> VariationList:
    return approval.list_variations(get_database(), _merchant(), persona_id, job_id=job_id)


@app.post("/personas/<persona_id>/approve-variation",
          responses={**success_response(200, "The persona, active with the approved variation", Persona),
                     **error_responses(400, 404, 409, 415)})
def approve_variation(persona_id: UUID, request: Annotated[ApproveVariationRequest, Body()]) -> Persona:
    persona, changed = approval.approve_variation(get_database(), _merchant(), persona_id, request.variation_id,
                                                  cooldown=_cooldown(), clock=utc_now)
    logger.info("approval of variation %s for persona %s: %s", request.variation_id, persona_id,
                "approved" if changed else "already approved")
    return persona


_ADAPTER: TypeAdapter[ApproveVariationAction] = TypeAdapter(ApprovalAction)


def _dispatch(action: ApproveVariationAction) -> Persona:
    persona, _ = approval.approve_variation(get_database(), action.merchant_id, action.persona_id,
                                            action.variation_id, cooldown=_cooldown(), clock=utc_now)
    return persona


@logger.inject_lambda_context(correlation_id_path=correlation_paths.API_GATEWAY_HTTP)
def lambda_handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    if event_kind(event) == "direct":
        return handle_direct_invoke(event, _ADAPTER, _dispatch)
    return app.resolve(event, context)
