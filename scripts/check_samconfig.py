"""Parse every samconfig.toml environment with SAM CLI's own code and build its `sam deploy` command line.

Run by scripts/check-deploy.sh with the tools venv's Python (aws-sam-cli is installed there, not in .venv).
For each environment with a [<env>.deploy.parameters] table:

1. SAM CLI's `deploy` command parses it exactly as `sam deploy --config-env <env>` would: its click context is
   built from the config file by SAM's configuration callback, and every option goes through SAM's own types
   (e.g. `parameter_overrides` through CfnParameterOverridesType, which is where `"AlarmEmail="` fails with
   "is not a valid format"). Nothing is deployed: the command's callback never runs.
2. The parameter overrides are checked against template.yaml's Parameters: known names, every parameter
   without a Default given, AllowedValues, AllowedPattern, MinValue/MaxValue, MinLength/MaxLength.
3. The equivalent command line is printed (`sam deploy --stack-name ... --parameter-overrides ...`).

Exit status 1 when an environment fails, with SAM's own message. Offline: no AWS call is made.
Usage: python check_samconfig.py [--config-file samconfig.toml] [--template-file template.yaml]
"""

from __future__ import annotations

import argparse
import re
import shlex
import sys
from pathlib import Path
from typing import Any

import click
from samcli.commands.deploy.command import cli as deploy_command
from samcli.lib.config.samconfig import SamConfig
from samcli.yamlhelper import yaml_parse

# Options printed in this order when set; the rest of the context's params are SAM's defaults.
SHOWN = ("stack_name", "region", "capabilities", "s3_prefix", "resolve_s3", "confirm_changeset",
         "fail_on_empty_changeset", "tags", "parameter_overrides")


def deploy_environments(config_file: Path) -> list[str]:
    config = SamConfig(str(config_file.parent), config_file.name)
    document: dict[str, Any] = config.document if hasattr(config, "document") else {}
    if not document:  # older/newer SamConfig internals: read the TOML directly
        import tomllib

        document = tomllib.loads(config_file.read_text(encoding="utf-8"))
    return sorted(env for env, commands in document.items()
                  if isinstance(commands, dict) and "deploy" in commands)


def parse_with_sam(env: str, config_file: Path, template_file: Path) -> click.Context:
    args = ["--config-env", env, "--config-file", str(config_file), "--template-file", str(template_file)]
    return deploy_command.make_context("deploy", args, resilient_parsing=False)


def _check_value(name: str, spec: dict[str, Any], value: str) -> list[str]:
    problems: list[str] = []
    kind = str(spec.get("Type", "String"))
    is_list = kind.startswith("List<") or kind == "CommaDelimitedList"
    values = [v.strip() for v in value.split(",")] if is_list else [value]
    if "AllowedValues" in spec and value not in [str(v) for v in spec["AllowedValues"]]:
        problems.append(f"{name}={value!r} is not one of {spec['AllowedValues']}")
    if "AllowedPattern" in spec:
        pattern = str(spec["AllowedPattern"])
        if re.fullmatch(pattern, value) is None:
            problems.append(f"{name}={value!r} does not match {pattern}")
    if kind == "Number":
        try:
            number = float(value)
        except ValueError:
            return [f"{name}={value!r} is not a number"]
        if "MinValue" in spec and number < float(spec["MinValue"]):
            problems.append(f"{name}={value} < MinValue {spec['MinValue']}")
        if "MaxValue" in spec and number > float(spec["MaxValue"]):
            problems.append(f"{name}={value} > MaxValue {spec['MaxValue']}")
    if "MinLength" in spec and len(value) < int(spec["MinLength"]):
        problems.append(f"{name}: shorter than MinLength {spec['MinLength']}")
    if "MaxLength" in spec and len(value) > int(spec["MaxLength"]):
        problems.append(f"{name}: longer than MaxLength {spec['MaxLength']}")
    if kind.startswith("List<AWS::EC2::") and not all(values):
        problems.append(f"{name}: an empty item in {value!r}")
    return problems


def check_overrides(overrides: dict[str, str], parameters: dict[str, dict[str, Any]]) -> list[str]:
    problems = [f"{name} is not a parameter of the template" for name in overrides if name not in parameters]
    problems += [f"{name} has no Default and is not given" for name, spec in parameters.items()
                 if "Default" not in spec and name not in overrides]
    for name, value in overrides.items():
        if name in parameters:
            problems += _check_value(name, parameters[name], str(value))
    return problems


def command_line(params: dict[str, Any], env: str) -> str:
    argv = ["sam", "deploy", "--config-env", env]
    for key in SHOWN:
        value = params.get(key)
        if value in (None, (), [], {}):
            continue
        flag = "--" + key.replace("_", "-")
        if isinstance(value, bool):
            argv.append(flag if value else "--no-" + key.replace("_", "-"))
        elif isinstance(value, dict):
            argv.append(flag)
            argv.extend(f"{k}={v}" for k, v in value.items())
        elif isinstance(value, (list, tuple)):
            argv.append(flag)
            argv.extend(str(v) for v in value)
        else:
            argv.extend([flag, str(value)])
    return shlex.join(argv)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--config-file", type=Path, default=Path("samconfig.toml"))
    parser.add_argument("--template-file", type=Path, default=Path("template.yaml"))
    options = parser.parse_args()
    template = yaml_parse(options.template_file.read_text(encoding="utf-8"))
    parameters: dict[str, dict[str, Any]] = template.get("Parameters", {})
    environments = deploy_environments(options.config_file)
    if not environments:
        print(f"{options.config_file}: no [<env>.deploy.parameters] table", file=sys.stderr)
        return 1
    failed = 0
    for env in environments:
        try:
            context = parse_with_sam(env, options.config_file, options.template_file)
        except click.ClickException as error:
            print(f"FAIL {env}: SAM CLI refuses it: {error.format_message()}")
            failed += 1
            continue
        params = dict(context.params)
        # region is one of SAM's common options; it lands on the context object, not in params
        region = getattr(context, "region", None) or getattr(getattr(context, "obj", None), "region", None)
        if region:
            params["region"] = region
        problems = []
        if not params.get("stack_name"):
            problems.append("no stack_name")
        problems += check_overrides(dict(params.get("parameter_overrides") or {}), parameters)
        if problems:
            print(f"FAIL {env}: " + "; ".join(problems))
            failed += 1
            continue
        print(f"OK   {env}: {command_line(params, env)}")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
