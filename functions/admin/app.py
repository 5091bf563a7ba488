"""Admin function: the operator routes under /admin/ (scope genjobs/admin): prompt templates, merchant
settings, jobs of every merchant and their retry, the audit trail. Every write is recorded in admin_audit
with the token's `sub`, in the same transaction as the change."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated
from uuid import UUID

from aws_lambda_powertools.event_handler import Response
from aws_lambda_powertools.event_handler.openapi.params import Body, Path, Query
from genjobs import dependencies
from genjobs.entry import Function
from genjobs.http.openapi import error_responses, success_response
from genjobs.http.resolver import actor_from, aware, create_resolver, require_scope
from genjobs.models.admin import (
    AuditPage,
    CreatePromptTemplateRequest,
    MerchantOverview,
    MerchantSettingsPatch,
    Preview,
    PreviewRequest,
    PromptTemplate,
    PromptTemplateList,
)
from genjobs.models.jobs import DEFAULT_PAGE_SIZE, MAX_PAGE_SIZE, Job, JobPage, JobType
from genjobs.models.registry import AdminModel, AdminModelList, ModelPatch
from genjobs.services import audit, jobs, merchants, models, templates

app = create_resolver()
JSON = "application/json"
STATUS_FILTER = ("one status or several, comma-separated (queued, processing, generating_videos, completed, "
                 "failed, canceled)")
ADMIN = "Needs the genjobs/admin scope."


def _operator() -> str:
    """Who is calling (the token's `sub`), once the scope is checked."""
    require_scope(app, dependencies.get().settings.admin_scope)
    return actor_from(app)


@app.get("/admin/prompt-templates",
         summary="List prompt templates",
         description=f"Every template version, the active one of each job type first. {ADMIN}",
         responses={**success_response(200, "The template versions", PromptTemplateList), **error_responses(403)})
def list_templates(job_type: Annotated[JobType | None, Query()] = None) -> PromptTemplateList:
    _operator()
    return templates.list_templates(dependencies.get().db, job_type=job_type)


@app.post("/admin/prompt-templates", status_code=201,
          summary="Create a prompt template version",
          description="A new, inactive version of the named template (versions are never edited in place). "
                      "`variables` maps each declared variable to its default (null: starts must give it); the "
                      "template's `${...}` placeholders other than the built-ins (name, description, product_name, "
                      f"character_type, and state for state videos) must be exactly the declared ones (422). {ADMIN}",
          responses={**success_response(201, "The new version", PromptTemplate), **error_responses(400, 403, 415)})
def create_template(request: Annotated[CreatePromptTemplateRequest, Body()]) -> Response[PromptTemplate]:
    actor = _operator()
    deps = dependencies.get()
    template = templates.create_template(deps.db, request, actor=actor, clock=deps.clock)
    return Response(status_code=201, content_type=JSON, body=template)


@app.post("/admin/prompt-templates/preview",
          summary="Preview a prompt template",
          description="The prompt a template renders with `variables` (built-ins stand in for a persona's fields); "
                      f"422 naming the missing and unknown variables. {ADMIN}",
          responses={**success_response(200, "The rendered prompt", Preview),
                     **error_responses(400, 403, 404, 415)})
def preview_template(request: Annotated[PreviewRequest, Body()]) -> Preview:
    _operator()
    return templates.preview(dependencies.get().db, request)


@app.post("/admin/prompt-templates/<template_id>/activate",
          summary="Activate a prompt template",
          description="Make this version the one active template of its job type, atomically (concurrent "
                      "activations apply one after another; exactly one ends active). Starts use it from now on. "
                      f"{ADMIN}",
          responses={**success_response(200, "The active template", PromptTemplate), **error_responses(403, 404)})
def activate_template(template_id: UUID) -> PromptTemplate:
    actor = _operator()
    deps = dependencies.get()
    return templates.activate_template(deps.db, template_id, actor=actor, clock=deps.clock)


@app.get("/admin/models",
         summary="List every model",
         description="Every configured model, enabled or not, with its price and its source, lifecycle and region. "
                     f"{ADMIN}",
         responses={**success_response(200, "The models", AdminModelList), **error_responses(403)})
def list_all_models() -> AdminModelList:
    _operator()
    return models.all_models(dependencies.get().db)


@app.patch("/admin/models/<model_id>",
           summary="Change a model",
           description="Enable or disable it, make it its kind's one default, set its price (jobs started afterwards "
                       "pay it; a job keeps the price it started with). The default cannot be disabled and only an "
                       f"enabled model that is not eol can become the default (409). {ADMIN}",
           responses={**success_response(200, "The model", AdminModel), **error_responses(400, 403, 404, 409, 415)})
def update_model(model_id: Annotated[str, Path(min_length=1, max_length=200)],
                 request: Annotated[ModelPatch, Body()]) -> AdminModel:
    actor = _operator()
    deps = dependencies.get()
    return models.update_model(deps.db, model_id, request, actor=actor, clock=deps.clock)


@app.get("/admin/merchants/<merchant_id>",
         summary="Read a merchant",
         description="A merchant's settings (null: the deployment default / no budget), the hourly limit in effect, "
                     f"its sliding hour, this month's cost and reservations, job counts. {ADMIN}",
         responses={**success_response(200, "The merchant", MerchantOverview), **error_responses(403, 404)})
def get_merchant(merchant_id: Annotated[str, Path(min_length=1, max_length=200)]) -> MerchantOverview:
    _operator()
    deps = dependencies.get()
    return merchants.get_merchant(deps.db, merchant_id, default_hourly_limit=deps.settings.hourly_generation_limit,
                                  clock=deps.clock)


@app.patch("/admin/merchants/<merchant_id>",
           summary="Change a merchant's limits",
           description="Set `hourly_generation_limit` and/or `monthly_budget_usd`; null goes back to the deployment "
                       f"default / no budget. The next start of the merchant applies it. {ADMIN}",
           responses={**success_response(200, "The merchant", MerchantOverview), **error_responses(400, 403, 404, 415)})
def update_merchant(merchant_id: Annotated[str, Path(min_length=1, max_length=200)],
                    request: Annotated[MerchantSettingsPatch, Body()]) -> MerchantOverview:
    actor = _operator()
    deps = dependencies.get()
    return merchants.update_settings(deps.db, merchant_id, request, actor=actor,
                                     default_hourly_limit=deps.settings.hourly_generation_limit, clock=deps.clock)


@app.get("/admin/jobs",
         summary="List jobs of every merchant",
         description="Jobs newest first, each with its outputs; filters `merchant_id`, `status` (several, "
                     f"comma-separated), `job_type`, `created_after` / `created_before`. Keyset paged. {ADMIN}",
         responses={**success_response(200, "A page of jobs", JobPage), **error_responses(400, 403)})
def list_jobs(
    *,
    merchant_id: Annotated[str | None, Query(min_length=1, max_length=200)] = None,
    status: Annotated[str | None, Query(max_length=200, description=STATUS_FILTER)] = None,
    job_type: Annotated[JobType | None, Query()] = None,
    created_after: Annotated[datetime | None, Query(description="only jobs created after this instant")] = None,
    created_before: Annotated[datetime | None, Query(description="only jobs created before this instant")] = None,
    limit: Annotated[int, Query(ge=1, le=MAX_PAGE_SIZE)] = DEFAULT_PAGE_SIZE,
    cursor: Annotated[str | None, Query(description="next_cursor of the previous page")] = None,
) -> JobPage:
    _operator()
    deps = dependencies.get()
    return jobs.list_all_jobs(deps.db, merchant_id=merchant_id, status=status, job_type=job_type,
                              created_after=aware(created_after, "created_after"),
                              created_before=aware(created_before, "created_before"), limit=limit, cursor=cursor,
                              cursor_keys=deps.cursor_keys())


@app.post("/admin/jobs/<job_id>/retry", status_code=202,
          summary="Retry a failed or canceled job",
          description="Start the job again as a new job (`retry_of` = this one): same persona, type, count or "
                      "states, template, variables and model. Not held to the hourly limit or the cooldown; held to "
                      f"the monthly budget (402) and the persona's rules (404, 409). {ADMIN}",
          responses={**success_response(202, "The new job", Job), **error_responses(402, 403, 404, 409)})
def retry_job(job_id: UUID) -> Response[Job]:
    actor = _operator()
    deps = dependencies.get()
    job = jobs.retry_job(deps.db, deps.invoker, job_id, actor=actor, max_retries=deps.settings.max_retries,
                         clock=deps.clock, worker_function=deps.settings.worker_function_name)
    return Response(status_code=202, content_type=JSON, body=job, headers={"Location": f"/jobs/{job.id}"})


@app.get("/admin/audit",
         summary="The operators' audit trail",
         description="Every operator write, newest first: who (the token's sub), what, before and after, "
                     f"when. {ADMIN}",
         responses={**success_response(200, "A page of audit entries", AuditPage), **error_responses(400, 403)})
def list_audit(
    limit: Annotated[int, Query(ge=1, le=MAX_PAGE_SIZE)] = DEFAULT_PAGE_SIZE,
    cursor: Annotated[str | None, Query(description="next_cursor of the previous page")] = None,
) -> AuditPage:
    _operator()
    deps = dependencies.get()
    return audit.list_audit(deps.db, limit=limit, cursor=cursor, cursor_keys=deps.cursor_keys())


lambda_handler = Function("admin", http=app)
