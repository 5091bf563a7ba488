"""Prompt templates: the built-in defaults and rendering.

Templates use `string.Template` placeholders (`${name}`): substitution is plain text, no attribute access
or code, so a template or a variable can never reach into Python objects. Built-in variables come from the
persona (name, description, product_name, character_type) and, for state videos, the state.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from string import Template

BUILTIN_VARIABLES = ("name", "description", "product_name", "character_type", "state")


@dataclass(frozen=True)
class PromptTemplate:
    template: str
    variables: tuple[str, ...] = ()
    defaults: Mapping[str, str] = field(default_factory=dict)


# Used when no template of the job type is active in the database (the migration seeds equal ones).
BUILTIN_TEMPLATES: dict[str, PromptTemplate] = {
    "character_variations": PromptTemplate(
        template=(
            "Character design sheet of ${name}, a ${character_type} who is the mascot of ${product_name}. "
            "${description} Style: ${style}. Full body, front view, plain light background, "
            "consistent proportions, expressive face, high detail."
        ),
        variables=("style",),
        defaults={"style": "friendly 3D cartoon"},
    ),
    "state_videos": PromptTemplate(
        template=(
            "${name}, the ${character_type} mascot of ${product_name}, in a seamless looping animation: "
            "${state}. Static camera, plain light background, smooth natural motion."
        ),
    ),
}


def render_prompt(
    template_text: str | None,
    job_type: str,
    *,
    persona: Mapping[str, str | None],
    variables: Mapping[str, str],
    template_defaults: Mapping[str, str] | None = None,
    state: str | None = None,
) -> str:
    builtin = BUILTIN_TEMPLATES[job_type]
    text = template_text or builtin.template
    defaults = template_defaults if template_text is not None else builtin.defaults
    values: dict[str, str] = {
        "name": persona.get("name") or "the character",
        "description": persona.get("description") or "",
        "product_name": persona.get("product_name") or "the product",
        "character_type": persona.get("character_type") or "character",
    }
    if state is not None:
        values["state"] = state.replace("_", " ")
    values.update(defaults or {})
    values.update(variables)
    rendered = Template(text).safe_substitute(values)
    return " ".join(rendered.split())


def placeholders(template_text: str) -> tuple[list[str], bool]:
    """The `${name}` (or `$name`) placeholders of a template, in order of first use, and whether every `$` is
    a valid placeholder or `$$` (what `string.Template` will substitute when rendering)."""
    template = Template(template_text)
    return list(dict.fromkeys(template.get_identifiers())), template.is_valid()
