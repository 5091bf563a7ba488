"""`make check-deploy`, steps 2 and 3: the SAM-transformed template's checks and checkov, offline.

The transform runs in the tools venv (samtranslator comes with aws-sam-cli), so these tests drive
scripts/check-deploy.sh and scripts/check_transformed.py as subprocesses, like `make check-deploy` does.
"""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path

import pytest

from tests.support.template import REPO_ROOT

pytestmark = pytest.mark.slow  # installs the tools (and checkov's) venvs on a first run

TOOLS_PYTHON = REPO_ROOT / ".tools" / "bin" / "python"


def _run(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        list(args), cwd=REPO_ROOT, env={**os.environ, "SAM_CLI_TELEMETRY": "0"}, capture_output=True, text=True,
        timeout=900, stdin=subprocess.DEVNULL, check=False,
    )


@pytest.fixture(scope="module")
def transformed() -> dict[str, object]:
    done = _run("bash", "scripts/check-deploy.sh", "transform")
    assert done.returncode == 0, done.stdout + done.stderr[-3000:]
    assert "OK   transformed (dev)" in done.stdout and "OK   transformed (prod)" in done.stdout
    document: dict[str, object] = json.loads(
        (REPO_ROOT / ".aws-sam" / "check-deploy" / "transformed-dev.json").read_text(encoding="utf-8")
    )
    return document


def _check(document: dict[str, object], tmp_path: Path) -> list[str]:
    path = tmp_path / "transformed.json"
    path.write_text(json.dumps(document), encoding="utf-8")
    program = (
        "import json, sys; sys.path.insert(0, 'scripts'); from check_transformed import check; "
        "print(json.dumps(check(json.load(open(sys.argv[1])))))"
    )
    done = _run(str(TOOLS_PYTHON), "-c", program, str(path))
    assert done.returncode == 0, done.stderr[-3000:]
    problems: list[str] = json.loads(done.stdout.strip().splitlines()[-1])
    return problems


def test_the_transformed_template_passes(transformed: dict[str, object], tmp_path: Path) -> None:
    resources = transformed["Resources"]
    assert isinstance(resources, dict)
    worker = resources["WorkerFunction"]["Properties"]
    assert worker["ReservedConcurrentExecutions"] == {"Ref": "WorkerReservedConcurrency"}
    assert _check(transformed, tmp_path) == []


def test_the_checks_catch_a_shared_pool_and_an_unbound_permission(
    transformed: dict[str, object], tmp_path: Path
) -> None:
    # Given the transformed template with an API function reserving concurrency and an unbound permission
    broken = json.loads(json.dumps(transformed))
    broken["Resources"]["ProgressFunction"]["Properties"]["ReservedConcurrentExecutions"] = 10
    broken["Resources"]["StrayPermission"] = {
        "Type": "AWS::Lambda::Permission",
        "Properties": {"Action": "lambda:InvokeFunction", "FunctionName": "x", "Principal": "s3.amazonaws.com"},
    }
    broken["Resources"]["LimitsFunction"]["Properties"]["Environment"]["Variables"]["DB_USER"] = "genjobs_admin"
    # When checked, Then each is reported
    problems = _check(broken, tmp_path)
    assert any(p.startswith("ProgressFunction has reserved concurrency") for p in problems), problems
    assert "StrayPermission: a Lambda permission without SourceArn" in problems
    assert any(p.startswith("LimitsFunction DB_USER") for p in problems), problems


def test_checkov_passes_with_only_the_documented_skips() -> None:
    done = _run("bash", "scripts/check-deploy.sh", "checkov")
    assert done.returncode == 0, done.stdout[-4000:] + done.stderr[-2000:]
    assert "Failed checks: 0" in done.stdout
    skips = [line.strip()[2:] for line in (REPO_ROOT / "tools" / "checkov.yaml").read_text().splitlines()
             if line.strip().startswith("- CKV_")]
    docs = (REPO_ROOT / "docs" / "deploy.md").read_text(encoding="utf-8")
    assert skips and [s for s in skips if s not in docs] == [], "every skip is explained in docs/deploy.md"
