"""Transform template.yaml with the SAM translator, offline, and check what CloudFormation would receive.

Run by scripts/check-deploy.sh with the tools venv's Python. The transform is the one `sam deploy` relies on
(samtranslator, the same package CloudFormation's AWS::Serverless-2016-10-31 transform runs), fed with the
parameter values of a samconfig.toml environment; the managed-policy lookup (an IAM API call) is replaced by
an empty map, which is enough because the template names no managed policy by name.

Writes the transformed template (JSON) to the given path, for cfn-lint and checkov, and checks:
  * no AWS::Serverless::* resource is left;
  * the worker has reserved concurrency from WorkerReservedConcurrency and no other function has any, so no
    API function shares (or is starved by) the worker's pool;
  * every function runs in the VPC with its own log group and the shared layer;
  * every AWS::Lambda::Permission is bound to its caller by SourceArn, or, where SAM cannot do that (S3 event
    sources: SAM sets SourceAccount only), is listed in KNOWN_WITHOUT_SOURCE_ARN with the reason;
  * the functions' DB_USER: genjobs_app everywhere except the migrate function (the schema owner).
Exit status 1 on any failure. Usage: python check_transformed.py <samconfig env> <output.json>
"""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path
from typing import Any

from samcli.yamlhelper import yaml_parse
from samtranslator.translator.transform import transform

sys.path.insert(0, str(Path(__file__).resolve().parent))
from check_samconfig import parse_with_sam

# Lambda permissions SAM generates without SourceArn, and why that is accepted for now.
KNOWN_WITHOUT_SOURCE_ARN: dict[str, str] = {}


class _NoManagedPolicies:
    def load(self) -> dict[str, str]:
        return {}


def transformed(template: dict[str, Any], parameters: dict[str, str]) -> dict[str, Any]:
    # The translator reads the region for its pseudo parameters from boto's default session (no call is made).
    os.environ.setdefault("AWS_DEFAULT_REGION", "us-east-1")
    # `sam deploy` packages first: local CodeUri/ContentUri become the S3 objects it uploaded.
    template = json.loads(json.dumps(template))
    for logical_id, resource in template["Resources"].items():
        props = resource.get("Properties", {})
        for key in ("CodeUri", "ContentUri"):
            if isinstance(props.get(key), str) and not props[key].startswith("s3://"):
                props[key] = f"s3://genjobs-check-artifacts/{logical_id}.zip"
        if resource.get("Type") == "AWS::Lambda::Function" and isinstance(props.get("Code"), str):
            # a plain function's local Code is packaged too (WebhookSenderFunction)
            props["Code"] = {"S3Bucket": "genjobs-check-artifacts", "S3Key": f"{logical_id}.zip"}
    # Only the region among the pseudo parameters (the translator needs it); the others stay intrinsics,
    # as in CloudFormation.
    values = dict(parameters)
    values["AWS::Region"] = os.environ["AWS_DEFAULT_REGION"]
    result: dict[str, Any] = transform(template, values, _NoManagedPolicies())  # type: ignore[arg-type]
    return result


# the webhook sender reaches merchants' receivers on the internet, so it runs outside the VPC
OUTSIDE_THE_VPC = {"WebhookSenderFunction"}


def _check_function(logical_id: str, props: dict[str, Any]) -> list[str]:
    problems: list[str] = []
    reserved = props.get("ReservedConcurrentExecutions")
    if logical_id == "WorkerFunction":
        if reserved != {"Ref": "WorkerReservedConcurrency"}:
            problems.append(f"WorkerFunction reserved concurrency is {reserved!r}")
    elif reserved is not None:
        problems.append(f"{logical_id} has reserved concurrency {reserved!r}: it would share or shrink the pool")
    if logical_id in OUTSIDE_THE_VPC:
        # no VPC and no database: it only posts webhook requests and reports results (docs/webhooks.md)
        if "VpcConfig" in props or "DB_USER" in props.get("Environment", {}).get("Variables", {}):
            problems.append(f"{logical_id} must stay outside the VPC and away from the database")
        if "LogGroup" not in props.get("LoggingConfig", {}):
            problems.append(f"{logical_id} has no log group of its own")
        return problems
    if "VpcConfig" not in props:
        problems.append(f"{logical_id} is not in the VPC")
    if "LogGroup" not in props.get("LoggingConfig", {}):
        problems.append(f"{logical_id} has no log group of its own")
    if "SharedLayer" not in json.dumps(props.get("Layers", [])):
        problems.append(f"{logical_id} lacks the shared layer")
    db_user = props.get("Environment", {}).get("Variables", {}).get("DB_USER")
    expected = {"Ref": "DatabaseUser"} if logical_id == "MigrateFunction" else "genjobs_app"
    if db_user != expected:
        problems.append(f"{logical_id} DB_USER is {db_user!r}, expected {expected!r}")
    return problems


def _check_permission(logical_id: str, props: dict[str, Any]) -> list[str]:
    if "SourceArn" in props:
        return []
    if logical_id in KNOWN_WITHOUT_SOURCE_ARN and "SourceAccount" in props:
        print(f"note: {logical_id} has SourceAccount but no SourceArn: {KNOWN_WITHOUT_SOURCE_ARN[logical_id]}")
        return []
    return [f"{logical_id}: a Lambda permission without SourceArn"]


def check(output: dict[str, Any]) -> list[str]:
    problems: list[str] = []
    resources: dict[str, dict[str, Any]] = output["Resources"]
    left = sorted(k for k, r in resources.items() if str(r["Type"]).startswith("AWS::Serverless::"))
    if left:
        problems.append(f"untransformed resources: {left}")
    functions = {k: r["Properties"] for k, r in resources.items() if r["Type"] == "AWS::Lambda::Function"}
    if "WorkerFunction" not in functions:
        problems.append("no WorkerFunction")
    for logical_id, props in functions.items():
        problems += _check_function(logical_id, props)
    for logical_id, resource in resources.items():
        if resource["Type"] == "AWS::Lambda::Permission":
            problems += _check_permission(logical_id, resource["Properties"])
    return problems


def main(argv: list[str]) -> int:
    if len(argv) != 3:
        print(__doc__, file=sys.stderr)
        return 2
    env, out = argv[1], Path(argv[2])
    context = parse_with_sam(env, Path("samconfig.toml"), Path("template.yaml"))
    overrides = {k: str(v) for k, v in dict(context.params.get("parameter_overrides") or {}).items()}
    template = yaml_parse(Path("template.yaml").read_text(encoding="utf-8"))
    output = transformed(template, overrides)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(output, indent=1, sort_keys=True), encoding="utf-8")
    problems = check(output)
    for problem in problems:
        print(f"FAIL transformed ({env}): {problem}")
    if not problems:
        count = len(output["Resources"])
        print(f"OK   transformed ({env}): {count} resources, no Serverless left, worker concurrency reserved")
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
