"""The README's walkthrough, run as it stands: the fenced bash block after the walkthrough marker is
executed with bash against a runner (BASE and TOKEN set, as the README's setup lines set them), so the
README can never describe commands that do not work."""

from __future__ import annotations

import re
import shutil
import subprocess
import uuid
from pathlib import Path

import pytest

from tests.support.runner_process import REPO_ROOT, RunnerProcess, token_for

README = REPO_ROOT / "README.md"
MARKER = "<!-- walkthrough: executed by tests/e2e/test_readme_walkthrough.py -->"
UUID = r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}"


def walkthrough_block(text: str) -> str:
    assert MARKER in text, f"README.md lost the walkthrough marker {MARKER!r}"
    after = text.split(MARKER, 1)[1]
    match = re.match(r"\s*```bash\n(.*?)\n```", after, re.DOTALL)
    assert match, "the walkthrough marker must be followed by a ```bash block"
    return match.group(1)


def setup_block(text: str) -> str:
    before = text.split(MARKER, 1)[0]
    blocks = re.findall(r"```bash\n(.*?)\n```", before, re.DOTALL)
    assert blocks, "the walkthrough needs its setup block (BASE and TOKEN)"
    return str(blocks[-1])


def test_the_setup_lines_set_base_and_token_the_way_the_test_does() -> None:
    setup = setup_block(README.read_text(encoding="utf-8"))
    assert "BASE=http://127.0.0.1:3000" in setup
    assert "TOKEN=$(make -s token MERCHANT=acme)" in setup


def test_make_token_prints_only_a_token(tmp_path: Path) -> None:
    make = shutil.which("make")
    if make is None:
        pytest.fail("make is required (the README uses it)")
    result = subprocess.run([make, "-s", "token", "MERCHANT=acme"], cwd=REPO_ROOT, capture_output=True, text=True,
                            timeout=120, check=False)
    assert result.returncode == 0, result.stderr
    assert re.fullmatch(r"[\w-]+\.[\w-]+\.[\w-]+\n", result.stdout), result.stdout


def test_readme_walkthrough_runs_end_to_end(runner: RunnerProcess, tmp_path: Path) -> None:
    script = walkthrough_block(README.read_text(encoding="utf-8"))
    env = {
        "PATH": "/usr/local/bin:/usr/bin:/bin",
        "HOME": str(tmp_path),
        "BASE": runner.base_url,
        "TOKEN": token_for(f"e2e-readme-{uuid.uuid4().hex[:8]}"),
    }
    python_dir = shutil.which("python3")
    assert python_dir, "the walkthrough uses python3"
    env["PATH"] = f"{Path(python_dir).parent}:{env['PATH']}"
    result = subprocess.run(["bash", "-e", "-u", "-o", "pipefail", "-c", script], cwd=tmp_path, env=env,
                            capture_output=True, text=True, timeout=240, check=False)
    output = result.stdout
    assert result.returncode == 0, f"exit {result.returncode}\n--- stdout\n{output}\n--- stderr\n{result.stderr}"
    assert re.search(rf"^persona {UUID}$", output, re.MULTILINE), output
    assert len(re.findall(rf"^job {UUID}: completed$", output, re.MULTILINE)) == 2, output
    assert re.search(r"^active$", output, re.MULTILINE), output
    assert all(f'"{state}": "http' in output for state in ("idle", "talking", "thinking")), output
    video = tmp_path / "idle.mp4"
    assert video.exists() and video.stat().st_size > 0
    assert video.read_bytes()[4:8] == b"ftyp"
