"""Fuzzing the HTTP API (schemathesis) against the shared local runner: every operation of the merged OpenAPI
document, with a valid bearer token, must never answer 5xx, and must answer only documented status codes
with bodies and content types that match the document. Afterwards the database must hold no partial write
(tests/support/invariants.py).

The document is docs/openapi.json, which is exactly what the runner serves at /openapi.json (checked below
and in test_openapi.py). It is loaded at import so that `schema.parametrize()` makes one test per operation:
`schemathesis.pytest.from_fixture` (loading it from the runner inside a fixture) cannot be used with
pytest 9.2, whose nodes no longer have the `_nodeid` attribute schemathesis 4.32 rewrites.

Random ids would only ever meet 404s, so the session first makes real data for the fuzz merchant (a persona
with approved variation and state videos, one awaiting approval, drafts, a canceled job) and the hooks below
let generated cases use those ids for path parameters, `persona_id`/`job_id` filters and `variation_id`
bodies; DELETE gets draft personas of its own, so it cannot delete the data the later operations use.

Bounded for `make test`: FUZZ_EXAMPLES (default 25) examples per operation in the fuzzing phase, plus
schemathesis' examples and coverage phases; deterministic (derandomized Hypothesis, fixed seed). `make fuzz`
runs the same with FUZZ_EXAMPLES=2000.
"""

from __future__ import annotations

import json
import os
from collections import Counter
from collections.abc import Iterator
from datetime import timedelta
from typing import Any

import pytest
import schemathesis
from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from schemathesis.checks import (
    content_type_conformance,
    not_a_server_error,
    response_schema_conformance,
    status_code_conformance,
)

from local_runner.openapi import DOCUMENT_PATH
from tests.support.invariants import assert_invariants, summary
from tests.support.runner_process import Merchant, RunnerProcess, request, token_for, wait_for_job

FUZZ_EXAMPLES = int(os.environ.get("FUZZ_EXAMPLES", "25"))
FUZZ_SEED = int(os.environ.get("FUZZ_SEED", "20260706"))
MERCHANT = "fuzz-merchant"
TOKEN = token_for(MERCHANT)
REQUEST_TIMEOUT_SECONDS = 30.0
CHECKS = [not_a_server_error, response_schema_conformance, status_code_conformance, content_type_conformance]
# The rescue sweep runs every 2 s on the shared runner (MAINTENANCE_INTERVAL_SECONDS).
LEASE_GRACE = timedelta(seconds=30)

CONFIG = schemathesis.Config.from_dict({
    "seed": FUZZ_SEED,
    "headers": {"Authorization": f"Bearer {TOKEN}"},
    "generation": {"max-examples": FUZZ_EXAMPLES, "deterministic": True, "database": "none"},
})
schema = schemathesis.openapi.from_path(DOCUMENT_PATH, config=CONFIG)

# Real ids of the fuzz merchant, filled by the `fuzz_data` fixture before the first case is generated.
KNOWN: dict[str, list[str]] = {"persona_id": [], "deletable_persona_id": [], "job_id": [], "variation_id": []}
CASES: Counter[tuple[str, int]] = Counter()


def _known_or_generated(value: dict[str, Any] | None, names: tuple[str, ...], *,
                        pool_for: dict[str, str] | None = None) -> st.SearchStrategy[Any]:
    """The generated value, or the same with one of `names` replaced by a known id."""
    if not isinstance(value, dict):
        return st.just(value)
    options: list[dict[str, Any]] = [value]
    for name in names:
        if name in value:
            pool = KNOWN[(pool_for or {}).get(name, name)]
            options += [{**value, name: known} for known in pool]
    return st.sampled_from(options)


@schema.hook
def flatmap_path_parameters(ctx: schemathesis.HookContext, path_parameters: Any) -> st.SearchStrategy[Any]:
    deleting = ctx.operation is not None and ctx.operation.method.upper() == "DELETE"
    return _known_or_generated(path_parameters, ("persona_id", "job_id"),
                               pool_for={"persona_id": "deletable_persona_id"} if deleting else None)


@schema.hook
def flatmap_query(ctx: schemathesis.HookContext, query: Any) -> st.SearchStrategy[Any]:
    return _known_or_generated(query, ("persona_id", "job_id"))


@schema.hook
def flatmap_body(ctx: schemathesis.HookContext, body: Any) -> st.SearchStrategy[Any]:
    return _known_or_generated(body, ("variation_id",))


@pytest.fixture(scope="module")
def fuzz_data(runner: RunnerProcess) -> Iterator[dict[str, list[str]]]:
    """The fuzz merchant's data, through the API (4 generation starts: the hourly limit leaves the fuzz 6)."""
    served = request(runner.base_url, "GET", "/openapi.json")
    assert served.status == 200 and served.json == json.loads(DOCUMENT_PATH.read_text()), (
        "the runner serves another document than docs/openapi.json: run `make openapi`")
    merchant = Merchant(MERCHANT, TOKEN, runner.base_url)

    def persona(name: str) -> str:
        reply = merchant.call("POST", "/personas", {"name": name})
        assert reply.status == 201, reply.body
        return str(reply.json["id"])

    def start(path: str, body: dict[str, Any]) -> str:
        reply = merchant.call("POST", path, body)
        assert reply.status == 202, reply.body
        return str(reply.json["id"])

    active, pending = persona("Active"), persona("Pending")
    variations_job = start(f"/personas/{active}/generations", {"variation_count": 2})
    pending_job = start(f"/personas/{pending}/generations", {"variation_count": 1})
    for job_id in (variations_job, pending_job):
        assert wait_for_job(merchant, job_id)["status"] == "completed"
    variations = [v["id"] for p in (active, pending)
                  for v in merchant.call("GET", f"/personas/{p}/variations").json["items"]]
    approved = merchant.call("POST", f"/personas/{active}/approve-variation", {"variation_id": variations[0]})
    assert approved.status == 200, approved.body
    videos_job = start(f"/personas/{active}/state-videos", {"states": ["idle", "talking"]})
    assert wait_for_job(merchant, videos_job)["status"] == "completed"
    canceled = persona("Canceled")
    canceled_job = start(f"/personas/{canceled}/generations", {"variation_count": 1})
    assert merchant.call("POST", f"/jobs/{canceled_job}/cancel").status in (200, 409)  # 409: it finished first

    KNOWN["persona_id"][:] = [active, pending, canceled, persona("Draft")]
    KNOWN["deletable_persona_id"][:] = [persona("Doomed 1"), persona("Doomed 2")]
    KNOWN["job_id"][:] = [variations_job, pending_job, videos_job, canceled_job]
    KNOWN["variation_id"][:] = variations
    yield KNOWN
    for ids in KNOWN.values():
        ids.clear()


@schema.parametrize()
@settings(max_examples=FUZZ_EXAMPLES, deadline=None, derandomize=True, database=None,
          suppress_health_check=list(HealthCheck))
def test_api(case: schemathesis.Case[Any], runner: RunnerProcess, fuzz_data: dict[str, list[str]]) -> None:
    response = case.call_and_validate(base_url=runner.base_url, checks=CHECKS, timeout=REQUEST_TIMEOUT_SECONDS)
    CASES[(case.operation.label, response.status_code)] += 1


def test_fuzzing_left_no_partial_write(runner: RunnerProcess, capsys: pytest.CaptureFixture[str]) -> None:
    """After the fuzz (jobs it started have finished): every invariant holds over the whole database."""
    merchant = Merchant(MERCHANT, TOKEN, runner.base_url)
    for status in ("queued", "processing", "generating_videos"):
        page = merchant.call("GET", f"/jobs?status={status}&limit=100")
        assert page.status == 200, page.body
        for job in page.json["items"]:
            wait_for_job(merchant, job["id"])
    assert_invariants(runner.database_url(), lease_grace=LEASE_GRACE)

    total = sum(CASES.values())
    operations = len({operation for operation, _ in CASES})
    statuses = Counter[int]()
    for (_, code), count in CASES.items():
        statuses[code] += count
    jobs = summary(runner.database_url(), merchants=[MERCHANT])
    line = (f"fuzz: {total} cases over {operations} operations (FUZZ_EXAMPLES={FUZZ_EXAMPLES}, seed {FUZZ_SEED}); "
            f"statuses {dict(sorted(statuses.items()))}; the fuzz merchant's jobs {jobs}")
    with capsys.disabled():
        print(f"\n{line}")
    if CASES:  # when the fuzz itself was deselected, there is nothing to count
        assert operations == len([op for op in schema.get_all_operations()]), CASES

