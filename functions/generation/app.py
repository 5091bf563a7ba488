"""Generation function: personas, generation starts (HTTP) and the job worker (direct invoke `run_job`)."""

from __future__ import annotations

from datetime import timedelta
from typing import Annotated, Any, Literal
from uuid import UUID

from aws_lambda_powertools import Logger, Metrics
from aws_lambda_powertools.event_handler import Response
from aws_lambda_powertools.event_handler.openapi.params import Body, Header
from aws_lambda_powertools.logging import correlation_paths
from aws_lambda_powertools.metrics import MetricUnit
from aws_lambda_powertools.utilities.typing import LambdaContext
from genjobs import runtime
from genjobs.clock import utc_now
from genjobs.config import get_config
from genjobs.db import get_database
from genjobs.errors import CooldownActive, RateLimited
from genjobs.http.app import create_resolver, merchant_id_from
from genjobs.http.openapi import error_responses, success_response
from genjobs.invocation import event_kind, handle_direct_invoke
from genjobs.models.jobs import Job
from genjobs.models.personas import CreatePersonaRequest, Persona, StartGenerationRequest, StartStateVideosRequest
from genjobs.services import generation, personas, worker
from pydantic import BaseModel, Field, TypeAdapter

logger = Logger(service="genjobs-generation")
metrics = Metrics(namespace=get_config().metrics_namespace, service="generation")
app = create_resolver()

JSON = "application/json"


def _merchant() -> str:
    return merchant_id_from(app, get_config().merchant_claim)


def _cooldown() -> timedelta:
    return timedelta(hours=get_config().regeneration_cooldown_hours)


def _limits() -> generation.LimitSettings:
    config = get_config()
    return generation.LimitSettings(default_hourly_limit=config.hourly_generation_limit, cooldown=_cooldown(),
                                    max_retries=config.max_retries)


def _start(persona_id: UUID, job_type: str, body: dict[str, Any], idempotency_key: str | None, *,
           variation_count: int | None = None, states: list[str] | None = None,
           prompt_variables: dict[str, str] | None = None) -> Response[Job]:
    try:
        started = generation.start_job(
            get_database(), runtime.invoker(), merchant_id=_merchant(), persona_id=persona_id, job_type=job_type,
            body=body, variation_count=variation_count, states=states, prompt_variables=prompt_variables or {},
            idempotency_key=idempotency_key, limits=_limits(), clock=utc_now,
            worker_function=get_config().generation_function_name,
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


@app.post("/personas", status_code=201, responses={**success_response(201, "Persona created", Persona),
                                                   **error_responses(400, 415)})
def create_persona(request: Annotated[CreatePersonaRequest, Body()]) -> Response[Persona]:
    persona = personas.create_persona(get_database(), _merchant(), request)
    return Response(status_code=201, content_type=JSON, body=persona, headers={"Location": f"/personas/{persona.id}"})


@app.get("/personas/<persona_id>", responses={**success_response(200, "The persona", Persona),
                                             **error_responses(404)})
def get_persona(persona_id: UUID) -> Persona:
    return personas.get_persona(get_database(), _merchant(), persona_id, cooldown=_cooldown(), clock=utc_now)


@app.delete("/personas/<persona_id>", status_code=204,
            responses={**success_response(204, "Persona deleted"), **error_responses(404, 409)})
def delete_persona(persona_id: UUID) -> Response[None]:
    personas.delete_persona(get_database(), _merchant(), persona_id, clock=utc_now)
    return Response(status_code=204, content_type=None, body=None)  # no body, so no Content-Type


@app.post("/personas/<persona_id>/generations", status_code=202,
          responses={**success_response(202, "Job queued (or replayed for a repeated Idempotency-Key)", Job),
                     **error_responses(400, 402, 404, 409, 415, 429)})
def start_generation(
    persona_id: UUID,
    request: Annotated[StartGenerationRequest | None, Body()] = None,
    idempotency_key: Annotated[str | None, Header(alias="idempotency-key")] = None,
) -> Response[Job]:
    request = request or StartGenerationRequest()
    return _start(persona_id, "character_variations", request.model_dump(), idempotency_key,
                  variation_count=request.variation_count, prompt_variables=request.prompt_variables)


@app.post("/personas/<persona_id>/state-videos", status_code=202,
          responses={**success_response(202, "State-videos job queued", Job),
                     **error_responses(400, 402, 404, 409, 415, 429)})
def start_state_videos(
    persona_id: UUID,
    request: Annotated[StartStateVideosRequest | None, Body()] = None,
    idempotency_key: Annotated[str | None, Header(alias="idempotency-key")] = None,
) -> Response[Job]:
    states = (request.states if request else None) or list(get_config().default_video_states)
    return _start(persona_id, "state_videos", {"states": states}, idempotency_key, states=states)


class RunJobAction(BaseModel):
    action: Literal["run_job"]
    job_id: UUID


GenerationAction = Annotated[RunJobAction, Field(discriminator="action")]
_ADAPTER: TypeAdapter[RunJobAction] = TypeAdapter(GenerationAction)


def _worker_settings() -> worker.WorkerSettings:
    return worker.WorkerSettings(lease=timedelta(seconds=get_config().job_lease_seconds))


def _dispatch(action: RunJobAction) -> worker.RunOutcome:
    outcome = worker.run_job(get_database(), runtime.media_provider(), runtime.media_store(), action.job_id,
                             settings=_worker_settings(), clock=utc_now)
    if outcome.charged:
        metrics.add_metric(name="GenerationCostUsd", unit=MetricUnit.NoUnit, value=outcome.cost_usd)
    return outcome


@metrics.log_metrics
@logger.inject_lambda_context(correlation_id_path=correlation_paths.API_GATEWAY_HTTP)
def lambda_handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    if event_kind(event) == "direct":
        return handle_direct_invoke(event, _ADAPTER, _dispatch)
    return app.resolve(event, context)
