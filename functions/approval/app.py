"""Approval function: variation listing and approval (HTTP) and `approve_variation` (direct invoke)."""

from __future__ import annotations

import logging
from typing import Annotated
from uuid import UUID

from aws_lambda_powertools.event_handler.openapi.params import Body, Query
from genjobs import dependencies
from genjobs.entry import Function
from genjobs.http.openapi import error_responses, success_response
from genjobs.http.resolver import create_resolver, merchant_id_from
from genjobs.models.actions import APPROVAL_ACTIONS, ApproveVariation
from genjobs.models.approval import ApproveVariationRequest, VariationList
from genjobs.models.personas import Persona
from genjobs.services import approval

logger = logging.getLogger("genjobs.approval")
app = create_resolver()


def _approve(merchant_id: str, persona_id: UUID, variation_id: UUID) -> Persona:
    deps = dependencies.get()
    persona, changed = approval.approve_variation(deps.db, merchant_id, persona_id, variation_id,
                                                  cooldown=deps.settings.regeneration_cooldown, clock=deps.clock)
    logger.info("approval of variation %s for persona %s: %s", variation_id, persona_id,
                "approved" if changed else "already approved")
    return persona


@app.get("/personas/<persona_id>/variations",
         summary="List a persona's variations",
         description="The images of the persona's latest variations job (or of `job_id`), each with its seed, "
                     "URL and whether it is the approved one.",
         responses={**success_response(200, "The variations", VariationList), **error_responses(404)})
def list_variations(
    persona_id: UUID,
    job_id: Annotated[UUID | None, Query(description="a variations job of the persona; default: its latest")] = None,
) -> VariationList:
    merchant_id = merchant_id_from(app, dependencies.get().settings.merchant_claim)
    return approval.list_variations(dependencies.get().db, merchant_id, persona_id, job_id=job_id)


@app.post("/personas/<persona_id>/approve-variation",
          summary="Approve a variation",
          description="Make one variation of a completed job the persona's image: the persona becomes active. "
                      "Approving the approved one again is a no-op 200; refused (409) while state videos run.",
          responses={**success_response(200, "The persona, active with the approved variation", Persona),
                     **error_responses(400, 404, 409, 415)})
def approve_variation(persona_id: UUID, request: Annotated[ApproveVariationRequest, Body()]) -> Persona:
    merchant_id = merchant_id_from(app, dependencies.get().settings.merchant_claim)
    return _approve(merchant_id, persona_id, request.variation_id)


def dispatch(action: ApproveVariation) -> Persona:
    return _approve(action.merchant_id, action.persona_id, action.variation_id)


lambda_handler = Function("approval", http=app, actions=APPROVAL_ACTIONS, dispatch=dispatch)
