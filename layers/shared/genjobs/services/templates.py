"""Prompt templates for operators: versions (never edited in place), creation checked against the template's
placeholders, atomic activation, preview rendering. Each write is one database function that also records
the audit row (sql/061)."""

from __future__ import annotations

from uuid import UUID

from genjobs.data import admin as admin_data
from genjobs.db import Database
from genjobs.errors import NotFound, ValidationFailed
from genjobs.models.admin import (
    CreatePromptTemplateRequest,
    Preview,
    PreviewRequest,
    PromptTemplate,
    PromptTemplateList,
)
from genjobs.ports import Clock
from genjobs.services.outcomes import raise_refusal
from genjobs.services.prompts import BUILTIN_VARIABLES, placeholders, render_prompt


def _builtins(job_type: str) -> set[str]:
    # `state` exists only while rendering a state's video prompt
    return set(BUILTIN_VARIABLES) - ({"state"} if job_type != "state_videos" else set())


def check_variables(request: CreatePromptTemplateRequest) -> None:
    """The placeholders of the template other than the built-ins must be exactly the declared variables."""
    used, valid = placeholders(request.template)
    if not valid:
        raise ValidationFailed("The template has a `$` that is not a placeholder: write `${name}`, or `$$` for a "
                               "literal dollar sign.", details={"field": "template"})
    builtins = _builtins(request.job_type)
    declared = set(request.variables)
    shadowing = sorted(declared & set(BUILTIN_VARIABLES))
    undeclared = sorted(set(used) - builtins - declared)
    unused = sorted(declared - set(used))
    if shadowing or undeclared or unused:
        raise ValidationFailed(
            "The template's ${...} placeholders do not match its declared variables.",
            details={"undeclared": undeclared, "unused": unused, "builtin_redeclared": shadowing,
                     "builtins": sorted(builtins)})


def list_templates(db: Database, *, job_type: str | None = None) -> PromptTemplateList:
    return PromptTemplateList(items=admin_data.list_templates(db, job_type))


def create_template(db: Database, request: CreatePromptTemplateRequest, *, actor: str, clock: Clock) -> PromptTemplate:
    check_variables(request)
    answer = admin_data.create_template(
        db, job_type=request.job_type, name=request.name, template=request.template,
        variables=sorted(request.variables),
        defaults={k: v for k, v in request.variables.items() if v is not None}, actor=actor, now=clock())
    return _template(answer.get("template"))


def activate_template(db: Database, template_id: UUID, *, actor: str, clock: Clock) -> PromptTemplate:
    answer = admin_data.activate_template(db, template_id, actor=actor, now=clock())
    raise_refusal(answer, template_id=template_id)
    return _template(answer.get("template"))


def _template(row: dict[str, object] | None) -> PromptTemplate:
    assert row is not None
    defaults = row.get("variable_defaults") or {}
    assert isinstance(defaults, dict)
    names = row.get("variables") or []
    assert isinstance(names, list)
    return PromptTemplate.model_validate({**row, "variables": {n: defaults.get(n) for n in names}})


def preview(db: Database, request: PreviewRequest) -> Preview:
    """The prompt the template renders with these variables (built-ins stand in for a persona's fields); 422
    naming the variables that are missing (declared, no default, not given) or unknown."""
    template = admin_data.find_template(db, request.template_id)
    if template is None:
        raise NotFound("Prompt template not found.", details={"template_id": str(request.template_id)})
    builtins = _builtins(template.job_type)
    unknown = sorted(set(request.variables) - set(template.variables) - builtins)
    missing = sorted(n for n, default in template.variables.items() if default is None and n not in request.variables)
    if unknown or missing:
        raise ValidationFailed("The variables do not match the template.",
                               details={"unknown": unknown, "missing": missing,
                                        "declared": sorted(template.variables)})
    persona = {k: v for k, v in request.variables.items() if k in builtins and k != "state"}
    declared = {k: v for k, v in request.variables.items() if k in template.variables}
    defaults = {k: v for k, v in template.variables.items() if v is not None}
    prompt = render_prompt(template.template, template.job_type, persona=persona, variables=declared,
                           template_defaults=defaults, state=request.variables.get("state"))
    return Preview(template_id=template.id, prompt=prompt)
