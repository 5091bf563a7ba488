"""Every samconfig.toml environment parses with SAM CLI's own code and yields a `sam deploy` command line.

`make deploy ENV=dev` used to fail before reaching AWS: `"AlarmEmail="` in parameter_overrides is refused by
SAM CLI ("AlarmEmail= is not a valid format"). The check (scripts/check_samconfig.py, run by
`make check-deploy` with the tools venv where aws-sam-cli lives) builds SAM's `deploy` click context from the
config file exactly as `sam deploy --config-env <env>` does, then checks the overrides against template.yaml.
"""

from __future__ import annotations

import os
import re
import subprocess
import tomllib
from pathlib import Path

import pytest

from tests.support.template import REPO_ROOT, load_template

pytestmark = pytest.mark.slow  # the first run installs the tools venv (.tools/)


def _check(config_file: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        ["bash", "scripts/check-deploy.sh", "samconfig"],
        cwd=REPO_ROOT,
        env={**os.environ, "CONFIG_FILE": str(config_file)},
        capture_output=True,
        text=True,
        timeout=900,
        stdin=subprocess.DEVNULL,
        check=False,
    )


def _deploy_environments(config_file: Path) -> list[str]:
    document = tomllib.loads(config_file.read_text(encoding="utf-8"))
    return sorted(env for env, tables in document.items() if isinstance(tables, dict) and "deploy" in tables)


def test_every_environment_builds_its_sam_deploy_command_line() -> None:
    # Given the repository's samconfig.toml
    config = REPO_ROOT / "samconfig.toml"
    environments = _deploy_environments(config)
    assert {"dev", "prod"} <= set(environments)
    # When SAM CLI parses each environment
    done = _check(config)
    # Then every one is accepted and yields its command line with the stack and the overrides
    assert done.returncode == 0, done.stdout + done.stderr[-3000:]
    lines = {m.group(1): m.group(2) for m in re.finditer(r"^OK   (\w+): (sam deploy .+)$", done.stdout, re.M)}
    assert sorted(lines) == environments
    parameters = load_template()["Parameters"]
    required = {name for name, spec in parameters.items() if "Default" not in spec}
    for env, line in lines.items():
        document = tomllib.loads(config.read_text(encoding="utf-8"))
        assert f"--stack-name {document[env]['deploy']['parameters']['stack_name']}" in line
        given = set(re.findall(r" (\w+)=", line.split("--parameter-overrides", 1)[1]))
        assert required <= given, f"{env}: {sorted(required - given)} missing"


def test_an_empty_override_is_refused_with_sam_clis_own_message(tmp_path: Path) -> None:
    """The check can fail: the defect of issue 13, point 1, reproduced in a copy of the config."""
    # Given samconfig.toml with the empty AlarmEmail override it used to have
    text = (REPO_ROOT / "samconfig.toml").read_text(encoding="utf-8")
    anchor = '    "HourlyGenerationLimit=10",\n'
    broken = text.replace(anchor, anchor + '    "AlarmEmail=",\n', 1)
    assert broken != text
    config = tmp_path / "samconfig.toml"
    config.write_text(broken, encoding="utf-8")
    # When it is checked
    done = _check(config)
    # Then SAM CLI's parameter type refuses the dev environment, and prod still passes
    assert done.returncode != 0
    assert "FAIL dev: SAM CLI refuses it" in done.stdout and "AlarmEmail= is not a valid format" in done.stdout
    assert re.search(r"^OK   prod: sam deploy ", done.stdout, re.M)


def test_an_unknown_or_invalid_parameter_is_refused(tmp_path: Path) -> None:
    text = (REPO_ROOT / "samconfig.toml").read_text(encoding="utf-8")
    anchor = '    "HourlyGenerationLimit=10",\n'
    broken = text.replace(anchor, anchor + '    "NoSuchParameter=1",\n    "CreateVpcEndpoints=yes",\n', 1)
    config = tmp_path / "samconfig.toml"
    config.write_text(broken, encoding="utf-8")
    done = _check(config)
    assert done.returncode != 0
    assert "NoSuchParameter is not a parameter of the template" in done.stdout
    assert "CreateVpcEndpoints='yes' is not one of" in done.stdout
