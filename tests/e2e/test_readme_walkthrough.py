"""The walkthrough — the main job end to end over HTTP, as a merchant's integration drives it: persona →
variations → approval → state videos → the persona with its videos, every media URL downloadable.

It is the README's walkthrough, run as it stands: the fenced bash block after the walkthrough marker is
executed with bash against a runner (BASE and TOKEN set, as the README's setup lines set them), so the
README can never describe commands that do not work. Its `curl` is the real one behind a recorder that
notes each call's status and body without changing what the script sees; the test then checks each answer,
and what the script left behind through the API."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
import sys
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from tests.support.runner_process import REPO_ROOT, Merchant, RunnerProcess, get_url, token_for, wait_for_job

README = REPO_ROOT / "README.md"
MARKER = "<!-- walkthrough: executed by tests/e2e/test_readme_walkthrough.py -->"
UUID = r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}"
PNG_MAGIC = b"\x89PNG\r\n\x1a\n"
STATES = ["idle", "talking", "thinking"]

# Runs the real curl with --dump-header, passes its output and exit status through unchanged, and appends
# {"args", "status", "body"} to the log: what the walkthrough's commands received.
_CURL_RECORDER = """#!{python}
import json, subprocess, sys, tempfile
with tempfile.NamedTemporaryFile() as headers:
    done = subprocess.run([{curl!r}, "--dump-header", headers.name, *sys.argv[1:]], stdout=subprocess.PIPE)
    sys.stdout.buffer.write(done.stdout)
    sys.stdout.flush()
    lines = headers.read().decode("latin-1").splitlines()
statuses = [int(line.split()[1]) for line in lines if line.startswith("HTTP/")]
try:
    body = done.stdout.decode()
except UnicodeDecodeError:
    body = None
with open({log!r}, "a") as log:
    log.write(json.dumps({{"args": sys.argv[1:], "status": statuses[-1] if statuses else None, "body": body}}) + "\\n")
sys.exit(done.returncode)
"""


@dataclass
class Call:
    """One curl command of the walkthrough and what it received."""

    args: list[str]
    status: int | None
    body: str | None

    @property
    def method(self) -> str:
        return self.args[self.args.index("-X") + 1] if "-X" in self.args else "GET"

    @property
    def url(self) -> str:
        return next(a for a in self.args if a.startswith("http"))

    @property
    def json(self) -> Any:
        return json.loads(self.body or "null")


def recording_curl(bin_dir: Path, log: Path) -> None:
    """Put a `curl` that records every call (see _CURL_RECORDER) first on the PATH given by `bin_dir`."""
    curl = shutil.which("curl")
    assert curl, "the walkthrough uses curl"
    bin_dir.mkdir(parents=True, exist_ok=True)
    shim = bin_dir / "curl"
    shim.write_text(_CURL_RECORDER.format(python=sys.executable, curl=curl, log=str(log)))
    shim.chmod(0o755)


def the_call(calls: list[Call], method: str, url_pattern: str) -> Call:
    found = [c for c in calls if c.method == method and re.fullmatch(url_pattern, c.url)]
    assert len(found) == 1, (method, url_pattern, [(c.method, c.url) for c in calls])
    return found[0]


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
    # Given the README's walkthrough block, a runner, and a merchant's token in TOKEN (as the setup lines do)
    script = walkthrough_block(README.read_text(encoding="utf-8"))
    merchant_id = f"e2e-readme-{uuid.uuid4().hex[:8]}"
    merchant = Merchant(merchant_id, token_for(merchant_id), runner.base_url)
    log = tmp_path / "curl-calls.jsonl"
    recording_curl(tmp_path / "bin", log)
    env = {
        "PATH": "/usr/local/bin:/usr/bin:/bin",
        "HOME": str(tmp_path),
        "BASE": runner.base_url,
        "TOKEN": merchant.token,
    }
    python_dir = shutil.which("python3")
    assert python_dir, "the walkthrough uses python3"
    env["PATH"] = f"{tmp_path / 'bin'}:{Path(python_dir).parent}:{env['PATH']}"

    # When bash runs it as it stands
    result = subprocess.run(["bash", "-e", "-u", "-o", "pipefail", "-c", script], cwd=tmp_path, env=env,
                            capture_output=True, text=True, timeout=240, check=False)

    # Then it succeeds and prints what the README says it prints
    output = result.stdout
    assert result.returncode == 0, f"exit {result.returncode}\n--- stdout\n{output}\n--- stderr\n{result.stderr}"
    persona_line = re.search(rf"^persona ({UUID})$", output, re.MULTILINE)
    assert persona_line, output
    persona_id = persona_line.group(1)
    finished = re.findall(rf"^job ({UUID}): completed$", output, re.MULTILINE)
    assert len(finished) == 2, output
    job_id, videos_id = finished
    assert re.search(r"^active$", output, re.MULTILINE), output
    assert all(f'"{state}": "http' in output for state in STATES), output
    video = tmp_path / "idle.mp4"
    assert video.exists() and video.stat().st_size > 0
    assert video.read_bytes()[4:8] == b"ftyp"

    # And each step was answered as the API documents it
    calls = [Call(**json.loads(line)) for line in log.read_text().splitlines()]
    base = re.escape(runner.base_url)
    created = the_call(calls, "POST", rf"{base}/personas")
    assert created.status == 201, created.body
    assert created.json["status"] == "draft"
    started = the_call(calls, "POST", rf"{base}/personas/{persona_id}/generations")
    assert started.status == 202, started.body
    assert started.json["id"] == job_id
    assert started.json["status"] in ("queued", "processing", "completed")
    variations = [c for c in calls if c.url == f"{runner.base_url}/personas/{persona_id}/variations"]
    assert len(variations) == 1 and variations[0].status == 200, variations
    items = variations[0].json["items"]
    assert [v["variation_index"] for v in items] == [0, 1, 2]
    assert len({v["seed"] for v in items}) == 3
    chosen = items[1]
    approved = the_call(calls, "POST", rf"{base}/personas/{persona_id}/approve-variation")
    assert approved.status == 200, approved.body
    assert approved.json["status"] == "active"
    assert approved.json["approved_variation_id"] == chosen["id"]
    assert approved.json["image_url"] == chosen["image_url"]
    videos = the_call(calls, "POST", rf"{base}/personas/{persona_id}/state-videos")
    assert videos.status == 202, videos.body
    assert videos.json["id"] == videos_id
    usage = the_call(calls, "GET", rf"{base}/usage")
    assert usage.status == 200, usage.body

    # And what the walkthrough left behind holds up through the API
    replay = merchant.call("POST", f"/personas/{persona_id}/generations", {"variation_count": 3},
                           headers={"Idempotency-Key": f"walkthrough-{persona_id}"})
    assert replay.status == 202, replay.body
    assert replay.json["id"] == job_id  # the Idempotency-Key returns the same job
    job = wait_for_job(merchant, job_id)
    assert job["status"] == "completed", job
    assert job["progress"] == 100
    assert len(job["variation_urls"]) == 3
    assert job["cost_usd"] > 0
    for url in job["variation_urls"]:
        image = get_url(url)
        assert image.status == 200, url
        assert image.header("content-type") == "image/png"
        assert image.body.startswith(PNG_MAGIC)
    again = merchant.call("POST", f"/personas/{persona_id}/approve-variation", {"variation_id": chosen["id"]})
    assert again.status == 200, again.body  # approving the approved variation again is no error

    video_job = wait_for_job(merchant, videos_id)
    assert video_job["status"] == "completed", video_job
    assert sorted(video_job["states_generated"]) == sorted(STATES)
    assert video_job["total_states"] == 3
    final = merchant.call("GET", f"/personas/{persona_id}")
    assert final.status == 200, final.body
    video_states = final.json["video_states"]
    assert sorted(video_states) == sorted(STATES)
    for state, url in video_states.items():
        media = get_url(url)
        assert media.status == 200, (state, url)
        assert media.header("content-type") == "video/mp4"
        assert media.body[4:8] == b"ftyp"

    timeline = merchant.call("GET", f"/jobs/{videos_id}/events")
    assert timeline.status == 200, timeline.body
    jobs = merchant.call("GET", f"/jobs?persona_id={persona_id}")
    assert jobs.status == 200, jobs.body
    assert {j["id"] for j in jobs.json["items"]} == {job_id, videos_id}
