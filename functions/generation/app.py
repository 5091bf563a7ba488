"""Generation function: personas, generation starts and the models a merchant can choose (HTTP); each started
job goes to the worker function."""

from __future__ import annotations

from typing import Annotated, Any
from uuid import UUID

from aws_lambda_powertools import Metrics
from aws_lambda_powertools.event_handler import Response
from aws_lambda_powertools.event_handler.openapi.params import Body, Header, Query
from aws_lambda_powertools.metrics import MetricUnit
from genjobs import dependencies
from genjobs.entry import Function
from genjobs.errors import CooldownActive, RateLimited
from genjobs.http.openapi import error_responses, success_response
from genjobs.http.resolver import create_resolver, merchant_id_from
from genjobs.models.jobs import DEFAULT_PAGE_SIZE, MAX_PAGE_SIZE, Job
from genjobs.models.personas import (
    CreatePersonaRequest,
    Persona,
    PersonaPage,
    PersonaStatus,
    StartGenerationRequest,
    StartStateVideosRequest,
    UpdatePersonaRequest,
)
from genjobs.models.registry import ModelList
from genjobs.services import jobs, models, personas
from genjobs.settings import get_settings

metrics = Metrics(namespace=get_settings().metrics_namespace, service="generation")
app = create_resolver()

JSON = "application/json"


def _merchant() -> str:
    return merchant_id_from(app, get_settings().merchant_claim)


def _start(persona_id: UUID, job_type: str, body: dict[str, Any], idempotency_key: str | None, *,
           variation_count: int | None = None, states: list[str] | None = None,
           prompt_variables: dict[str, str] | None = None, model: str | None = None) -> Response[Job]:
    deps = dependencies.get()
    settings = deps.settings
    limits = jobs.LimitSettings(default_hourly_limit=settings.hourly_generation_limit,
                                cooldown=settings.regeneration_cooldown, max_retries=settings.max_retries)
    try:
        started = jobs.start_job(
            deps.db, deps.invoker, merchant_id=_merchant(), persona_id=persona_id, job_type=job_type, body=body,
            variation_count=variation_count, states=states, prompt_variables=prompt_variables or {},
            idempotency_key=idempotency_key, limits=limits, clock=deps.clock,
            worker_function=settings.worker_function_name, model_id=model,
        )
    except RateLimited:
        metrics.add_metric(name="RateLimited", unit=MetricUnit.Count, value=1)
        raise
    except CooldownActive:
        metrics.add_metric(name="CooldownRejected", unit=MetricUnit.Count, value=1)
        raise
    if not started.replayed:
        metrics.add_metric(name="JobsCreated", unit=MetricUnit.Count, value=1)
    headers = {"Location": f"/jobs/{started.job.id}"}
    if started.replayed:
        headers["Idempotent-Replayed"] = "true"
    return Response(status_code=202, content_type=JSON, body=started.job, headers=headers)


@app.post("/personas", status_code=201,
          summary="Create a persona",
          description="A character for a merchant's product, in status `draft`. With an `Idempotency-Key` header, "
                      "a retried request answers the persona the first one created (200 with "
                      "`Idempotent-Replayed: true`), never a second persona; the same key with another body is "
                      "409.",
          responses={**success_response(201, "Persona created", Persona),
                     **success_response(200, "Replayed: the persona this Idempotency-Key created", Persona),
                     **error_responses(400, 404, 409, 415)})
def create_persona(
    request: Annotated[CreatePersonaRequest, Body()],
    idempotency_key: Annotated[str | None, Header(alias="idempotency-key")] = None,
) -> Response[Persona]:
    created = personas.create_persona(dependencies.get().db, _merchant(), request, idempotency_key=idempotency_key)
    headers = {"Location": f"/personas/{created.persona.id}"}
    if created.replayed:
        headers["Idempotent-Replayed"] = "true"
    return Response(status_code=200 if created.replayed else 201, content_type=JSON, body=created.persona,
                    headers=headers)


@app.get("/personas",
         summary="List personas",
         description="The merchant's personas, newest first, optionally of one `status`. Keyset paged: pass "
                     "`next_cursor` back as `cursor`; personas created meanwhile never shift a page.",
         responses={**success_response(200, "A page of personas", PersonaPage), **error_responses(400)})
def list_personas(
    status: Annotated[PersonaStatus | None, Query()] = None,
    limit: Annotated[int, Query(ge=1, le=MAX_PAGE_SIZE)] = DEFAULT_PAGE_SIZE,
    cursor: Annotated[str | None, Query(description="next_cursor of the previous page")] = None,
) -> PersonaPage:
    deps = dependencies.get()
    return personas.list_personas(deps.db, _merchant(), status=status, limit=limit, cursor=cursor,
                                  cursor_keys=deps.cursor_keys(),
                                  cooldown=deps.settings.regeneration_cooldown, clock=deps.clock)


@app.get("/personas/<persona_id>",
         summary="Read a persona",
         description="Status, approved variation and image, state videos, and `regeneration_available_at` (null "
                     "when variations may be generated again now). Another merchant's or a deleted persona is 404.",
         responses={**success_response(200, "The persona", Persona), **error_responses(404)})
def get_persona(persona_id: UUID) -> Persona:
    deps = dependencies.get()
    return personas.get_persona(deps.db, _merchant(), persona_id, cooldown=deps.settings.regeneration_cooldown,
                                clock=deps.clock)


@app.patch("/personas/<persona_id>",
           summary="Change a persona",
           description="Change `name`, `description`, `product_name` or `character_type` (validated as on "
                       "create; null clears all but `name`). Another merchant's or a deleted persona is 404.",
           responses={**success_response(200, "The changed persona", Persona), **error_responses(400, 404, 415)})
def update_persona(persona_id: UUID, request: Annotated[UpdatePersonaRequest, Body()]) -> Persona:
    deps = dependencies.get()
    return personas.update_persona(deps.db, _merchant(), persona_id, request,
                                   cooldown=deps.settings.regeneration_cooldown, clock=deps.clock)


@app.delete("/personas/<persona_id>", status_code=204,
            summary="Delete a persona",
            description="Soft delete: the persona is gone everywhere (reads, lists, starts, replays). Refused "
                        "(409) while it has an active job.",
            responses={**success_response(204, "Persona deleted"), **error_responses(404, 409)})
def delete_persona(persona_id: UUID) -> Response[None]:
    deps = dependencies.get()
    personas.delete_persona(deps.db, _merchant(), persona_id, clock=deps.clock)
    return Response(status_code=204, content_type=None, body=None)  # no body, so no Content-Type


@app.post("/personas/<persona_id>/generations", status_code=202,
          summary="Start character variations",
          description="Queue a job that generates `variation_count` (1-4, default 3) character images with distinct "
                      "seeds. Checked in one statement: the persona's active job, the hourly limit (429), the "
                      "regeneration cooldown (429), the monthly budget (402), the active template's variables "
                      "(422). An `Idempotency-Key` replay answers the same job.",
          responses={**success_response(202, "Job queued (or replayed for a repeated Idempotency-Key)", Job),
                     **error_responses(400, 402, 404, 409, 415, 429)})
def start_generation(
    persona_id: UUID,
    request: Annotated[StartGenerationRequest | None, Body()] = None,
    idempotency_key: Annotated[str | None, Header(alias="idempotency-key")] = None,
) -> Response[Job]:
    request = request or StartGenerationRequest()
    # `model` enters the request's fingerprint only when given: a replay from before models existed still matches
    body = request.model_dump(exclude=None if request.model else {"model"})
    return _start(persona_id, "character_variations", body, idempotency_key,
                  variation_count=request.variation_count, prompt_variables=request.prompt_variables,
                  model=request.model)


@app.post("/personas/<persona_id>/state-videos", status_code=202,
          summary="Start state videos",
          description="Queue a job that makes one short video per state (default: the deployment's "
                      "DEFAULT_VIDEO_STATES) from the approved image; the persona must be active. "
                      "`prompt_variables` fill the variables the active state_videos template declares.",
          responses={**success_response(202, "State-videos job queued", Job),
                     **error_responses(400, 402, 404, 409, 415, 429)})
def start_state_videos(
    persona_id: UUID,
    request: Annotated[StartStateVideosRequest | None, Body()] = None,
    idempotency_key: Annotated[str | None, Header(alias="idempotency-key")] = None,
) -> Response[Job]:
    states = (request.states if request else None) or list(get_settings().default_video_states)
    model = request.model if request else None
    variables = request.prompt_variables if request else {}
    # the fingerprint names the model and the variables only when given, so replays of bodies without them match
    body: dict[str, Any] = {"states": states, **({"model": model} if model else {}),
                            **({"prompt_variables": variables} if variables else {})}
    return _start(persona_id, "state_videos", body, idempotency_key, states=states, model=model,
                  prompt_variables=variables)


@app.get("/models",
         summary="List the models a merchant can choose",
         description="The enabled image and video models that are not end-of-life, each with its price per image or "
                     "per second and whether it is its kind's default; a job started without `model_id` uses the "
                     "default, one started with an unlisted model is refused with 422.",
         responses={**success_response(200, "The models a merchant can choose", ModelList)})
def list_models() -> ModelList:
    _merchant()  # a merchant's route like the others: the authorizer's claim must be there
    return models.merchant_models(dependencies.get().db)


lambda_handler = Function("generation", http=app, metrics=metrics)
