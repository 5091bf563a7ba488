"""Read template.yaml as data: CloudFormation short-form tags become their long-form dicts.

`!Ref X` -> {"Ref": "X"}, `!GetAtt A.B` -> {"Fn::GetAtt": ["A", "B"]}, `!Sub s` -> {"Fn::Sub": s}, and so on,
the same shape CloudFormation (and `sam validate`) sees, so tests can follow references exactly.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Any

import yaml

REPO_ROOT = Path(__file__).resolve().parents[2]
TEMPLATE_PATH = REPO_ROOT / "template.yaml"


class _CfnLoader(yaml.SafeLoader):
    pass


def _construct_tag(loader: _CfnLoader, tag_suffix: str, node: yaml.Node) -> dict[str, Any]:
    name = "Ref" if tag_suffix == "Ref" else ("Condition" if tag_suffix == "Condition" else f"Fn::{tag_suffix}")
    value: Any
    if isinstance(node, yaml.ScalarNode):
        value = loader.construct_scalar(node)
        if tag_suffix == "GetAtt" and isinstance(value, str):
            value = value.split(".", 1)
    elif isinstance(node, yaml.SequenceNode):
        value = loader.construct_sequence(node, deep=True)
    else:
        value = loader.construct_mapping(node, deep=True)  # type: ignore[arg-type]
    return {name: value}


_CfnLoader.add_multi_constructor("!", _construct_tag)


@lru_cache(maxsize=4)
def load_template(path: Path = TEMPLATE_PATH) -> dict[str, Any]:
    data = yaml.load(path.read_text(encoding="utf-8"), Loader=_CfnLoader)
    assert isinstance(data, dict)
    return data


@dataclass(frozen=True)
class Function:
    logical_id: str
    properties: dict[str, Any]
    globals: dict[str, Any]

    @property
    def code_dir(self) -> Path:
        return REPO_ROOT / str(self.properties["CodeUri"])

    @property
    def fixed_name_suffix(self) -> str:
        """`generation` for FunctionName !Sub "${AWS::StackName}-generation"."""
        name = self.properties.get("FunctionName", {})
        text = name.get("Fn::Sub", "") if isinstance(name, dict) else ""
        match = re.fullmatch(r"\$\{AWS::StackName\}-([a-z0-9-]+)", text)
        assert match, f"{self.logical_id}: FunctionName must be !Sub \"${{AWS::StackName}}-<name>\""
        return match.group(1)

    def setting(self, key: str) -> Any:
        return self.properties.get(key, self.globals.get(key))

    @property
    def layers(self) -> list[Any]:
        return [*self.globals.get("Layers", []), *self.properties.get("Layers", [])]

    @property
    def environment(self) -> dict[str, Any]:
        merged = dict(self.globals.get("Environment", {}).get("Variables", {}))
        merged.update(self.properties.get("Environment", {}).get("Variables", {}))
        return merged

    def events(self, event_type: str) -> dict[str, dict[str, Any]]:
        return {
            name: event.get("Properties", {})
            for name, event in self.properties.get("Events", {}).items()
            if event.get("Type") == event_type
        }

    def http_routes(self) -> set[tuple[str, str]]:
        return {(str(p["Method"]).upper(), str(p["Path"])) for p in self.events("HttpApi").values()}

    def policy_statements(self) -> Iterator[dict[str, Any]]:
        for policy in self.properties.get("Policies", []):
            if isinstance(policy, dict) and "Statement" in policy:
                yield from policy["Statement"]


def resources(template: dict[str, Any] | None = None) -> dict[str, dict[str, Any]]:
    template = template or load_template()
    return dict(template["Resources"])


def functions(template: dict[str, Any] | None = None) -> dict[str, Function]:
    template = template or load_template()
    globals_ = template.get("Globals", {}).get("Function", {})
    return {
        logical_id: Function(logical_id, resource.get("Properties", {}), globals_)
        for logical_id, resource in template["Resources"].items()
        if resource["Type"] == "AWS::Serverless::Function"
    }


def iter_policy_documents(template: dict[str, Any] | None = None) -> Iterator[tuple[str, dict[str, Any]]]:
    """Every IAM policy document written in the template: (where, document)."""
    for logical_id, resource in resources(template).items():
        props = resource.get("Properties", {})
        kind = resource["Type"]
        if kind in ("AWS::IAM::ManagedPolicy", "AWS::IAM::Policy", "AWS::S3::BucketPolicy",
                    "AWS::SQS::QueuePolicy", "AWS::SNS::TopicPolicy"):
            yield logical_id, props["PolicyDocument"]
        elif kind == "AWS::IAM::Role":
            for policy in props.get("Policies", []):
                yield f"{logical_id}/{policy['PolicyName']}", policy["PolicyDocument"]
        elif kind == "AWS::Serverless::Function":
            for index, policy in enumerate(props.get("Policies", [])):
                if isinstance(policy, dict) and "Statement" in policy:
                    yield f"{logical_id}/Policies[{index}]", policy


def as_list(value: Any) -> list[Any]:
    return value if isinstance(value, list) else [value]


def branches(value: Any) -> list[Any]:
    """The possible values of `value`: both branches of an Fn::If (recursively), minus AWS::NoValue."""
    if isinstance(value, dict) and "Fn::If" in value:
        _, when_true, when_false = value["Fn::If"]
        return [*branches(when_true), *branches(when_false)]
    if value == {"Ref": "AWS::NoValue"}:
        return []
    return [value]


def sub_text(value: Any) -> str:
    """The template string of a !Sub (short or list form), or a plain string."""
    if isinstance(value, str):
        return value
    if isinstance(value, dict) and "Fn::Sub" in value:
        sub = value["Fn::Sub"]
        return str(sub[0] if isinstance(sub, list) else sub)
    raise AssertionError(f"expected a string or !Sub, got {value!r}")


def normalize_path(path: str) -> str:
    """`/personas/{persona_id}` and `/personas/<persona_id>` both -> `/personas/{}`."""
    return re.sub(r"\{[^}/]+\}|<[^>/]+>", "{}", path.rstrip("/") or "/")
