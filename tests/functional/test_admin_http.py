"""The operator routes (/admin/...) through the admin handler: the scope (403 without it), prompt templates
(create checked against placeholders, preview, atomic activation), merchant limits effective on the next
start, jobs of every merchant, retries, and the audit trail of every write."""

from __future__ import annotations

import itertools
import threading
from datetime import timedelta
from typing import Any

import pytest
from genjobs.data import jobs as job_data
from genjobs.db import Database, record_statements
from genjobs.services import jobs

from tests.support.fakes import FrozenClock, LambdaStub
from tests.support.handlers import HANDLERS
from tests.support.merchants import MerchantClient
from tests.support.scenarios import new_persona, start_job

ROUTES = [
    ("GET", "/admin/prompt-templates", None, None),
    ("POST", "/admin/prompt-templates", None, {"job_type": "state_videos", "name": "x", "template": "${name}"}),
    ("POST", "/admin/prompt-templates/preview", None, {"template_id": "00000000-0000-0000-0000-000000000001"}),
    ("POST", "/admin/prompt-templates/00000000-0000-0000-0000-000000000001/activate",
     "/admin/prompt-templates/{template_id}/activate", None),
    ("GET", "/admin/merchants/acme", "/admin/merchants/{merchant_id}", None),
    ("PATCH", "/admin/merchants/acme", "/admin/merchants/{merchant_id}", {"hourly_generation_limit": 1}),
    ("GET", "/admin/jobs", None, None),
    ("POST", "/admin/jobs/00000000-0000-0000-0000-000000000001/retry", "/admin/jobs/{job_id}/retry", None),
    ("GET", "/admin/audit", None, None),
    ("GET", "/admin/models", None, None),
    ("PATCH", "/admin/models/luma.ray-v2:0", "/admin/models/{model_id}", {"enabled": False}),
]


def _params(path: str, route: str | None) -> dict[str, str] | None:
    if route is None:
        return None
    return {r[1:-1]: p for r, p in zip(route.split("/"), path.split("/"), strict=True) if r.startswith("{")}


def create_template(operator: MerchantClient, **fields: Any) -> tuple[int, Any, dict[str, str]]:
    body = {"job_type": "character_variations", "name": "seasonal",
            "template": "Sheet of ${name} for ${product_name}, ${mood}, style ${style}.",
            "variables": {"mood": None, "style": "flat"}, **fields}
    return operator.admin("POST", "/admin/prompt-templates", body=body)


def activate(operator: MerchantClient, template_id: str) -> tuple[int, Any, dict[str, str]]:
    return operator.admin("POST", f"/admin/prompt-templates/{template_id}/activate",
                          route="/admin/prompt-templates/{template_id}/activate", params={"template_id": template_id})


def audit(operator: MerchantClient) -> list[dict[str, Any]]:
    items: list[dict[str, Any]] = operator.admin("GET", "/admin/audit")[1]["items"]
    return items


@pytest.mark.parametrize("request_line", ROUTES, ids=[f"{m} {p}" for m, p, _, _ in ROUTES])
def test_every_operator_route_refuses_a_token_without_the_admin_scope(
        acme: MerchantClient, db: Database, request_line: tuple[str, str, str | None, Any]) -> None:
    method, path, route, body = request_line
    # Given a merchant's token (no scope) and one with another scope
    other_scope = MerchantClient(HANDLERS, "acme", claims={"scope": "openid genjobs/read"})

    # When they call an operator route
    answers = [client.call("admin", method, path, route=route, path_parameters=_params(path, route), body=body)
               for client in (acme, other_scope)]

    # Then 403 FORBIDDEN before anything is read or written
    for status, error, _ in answers:
        assert status == 403 and error["error"]["code"] == "FORBIDDEN"
    assert db.fetch_value("SELECT count(*) FROM admin_audit") == 0


# -- prompt templates -----------------------------------------------------------------------------------


def test_a_template_version_is_created_inactive_checked_against_its_placeholders(operator: MerchantClient) -> None:
    # When a template is created twice under one name
    status, first, _ = create_template(operator)
    _, second, _ = create_template(operator, template="${name}: ${mood} ${style}!")

    # Then two inactive versions, with their variables and defaults
    assert status == 201 and (first["version"], second["version"]) == (1, 2)
    assert first["is_active"] is False and first["variables"] == {"mood": None, "style": "flat"}
    # placeholders and declared variables must match; built-ins are not redeclared
    for fields in ({"template": "${name} ${mood}"},                       # style declared, unused
                   {"template": "${name} ${mood} ${style} ${colour}"},   # colour undeclared
                   {"variables": {"mood": None, "style": None, "name": None}, "template": "${name} ${mood} ${style}"},
                   {"template": "${mood} ${style} costs $5"},            # a bare $ that is no placeholder
                   {"job_type": "character_variations", "template": "${state} ${mood} ${style}"},
                   {"variables": {"Mood": None}}, {"job_type": "images"}, {"template": ""}):
        answer = create_template(operator, **fields)
        assert answer[0] == 422, (fields, answer[1])
    listed = operator.admin("GET", "/admin/prompt-templates", query={"job_type": "character_variations"})[1]
    assert next((t["name"], t["version"], t["is_active"]) for t in listed["items"]) == ("default", 1, True)
    assert {(t["name"], t["version"]) for t in listed["items"]} == {("default", 1), ("seasonal", 1), ("seasonal", 2)}


def test_preview_renders_or_names_missing_and_unknown_variables(operator: MerchantClient) -> None:
    template = create_template(operator)[1]

    def preview(variables: dict[str, str]) -> tuple[int, Any, dict[str, str]]:
        return operator.admin("POST", "/admin/prompt-templates/preview",
                              body={"template_id": template["id"], "variables": variables})

    status, rendered, _ = preview({"mood": "cheerful", "name": "Remy"})
    assert status == 200
    assert rendered["prompt"] == "Sheet of Remy for the product, cheerful, style flat."
    status, error, _ = preview({"colour": "red"})
    assert status == 422 and error["error"]["details"]["missing"] == ["mood"]
    assert error["error"]["details"]["unknown"] == ["colour"]
    assert operator.admin("POST", "/admin/prompt-templates/preview",
                          body={"template_id": "00000000-0000-0000-0000-000000000009"})[0] == 404


def test_activation_switches_the_active_template_and_starts_follow_it(operator: MerchantClient, acme: MerchantClient,
                                                                      db: Database) -> None:
    # Given a new template version with a required variable, activated
    template = create_template(operator)[1]
    status, active, _ = activate(operator, template["id"])
    assert status == 200 and active["is_active"] is True
    assert db.fetch_value("SELECT count(*) FROM prompt_templates WHERE job_type = 'character_variations' "
                          "AND is_active") == 1
    assert activate(operator, template["id"])[0] == 200  # again: unchanged

    # When a merchant starts without the required variable, then with it
    persona = acme.create_persona()[1]["id"]
    missing = acme.start_generation(persona, {"variation_count": 1})
    started = acme.start_generation(persona, {"variation_count": 1, "prompt_variables": {"mood": "calm"}})

    # Then the first is 422 naming it, the second is queued; one audit row for the one change
    assert missing[0] == 422 and missing[1]["error"]["details"]["missing"] == ["mood"]
    assert started[0] == 202
    entries = [e for e in audit(operator) if e["action"] == "prompt_template.activate"]
    assert len(entries) == 1 and entries[0]["actor"] == "operator-ann"
    assert entries[0]["after"]["active_template_id"] == template["id"]
    assert activate(operator, "00000000-0000-0000-0000-000000000009")[0] == 404


def test_state_video_starts_accept_prompt_variables(operator: MerchantClient, acme: MerchantClient,
                                                   db: Database) -> None:
    template = create_template(operator, job_type="state_videos", template="${name} ${state} in ${place}",
                               variables={"place": None})[1]
    activate(operator, template["id"])
    persona = acme.create_persona()[1]["id"]
    db.execute("UPDATE personas SET status = 'active' WHERE id = %s", (persona,))

    refused = acme.start_state_videos(persona, {"states": ["idle"]})
    started = acme.start_state_videos(persona, {"states": ["idle"], "prompt_variables": {"place": "a kitchen"}})

    assert refused[0] == 422 and refused[1]["error"]["details"]["missing"] == ["place"]
    assert started[0] == 202
    assert acme.start_state_videos(persona, {"prompt_variables": {"Bad": "x"}})[0] == 422


def test_parallel_activations_leave_exactly_one_active_template(operator: MerchantClient, db: Database) -> None:
    # Given eight versions of a template
    versions = [create_template(operator)[1]["id"] for _ in range(8)]

    # When all are activated at once, from eight threads
    barrier = threading.Barrier(len(versions))
    answers: list[int] = []
    lock = threading.Lock()

    def run(template_id: str) -> None:
        barrier.wait()
        status = activate(operator, template_id)[0]
        with lock:
            answers.append(status)

    threads = [threading.Thread(target=run, args=(v,)) for v in versions]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    # Then every activation succeeded, one after another: exactly one active template of the job type, and the
    # audit trail's chain of changes ends at it
    assert answers == [200] * 8
    active = db.fetch_all("SELECT id::text FROM prompt_templates WHERE job_type = 'character_variations' AND is_active")
    assert len(active) == 1 and active[0]["id"] in versions
    chain = [e for e in reversed(audit(operator)) if e["action"] == "prompt_template.activate"]
    assert len(chain) == 8
    assert chain[-1]["after"]["active_template_id"] == active[0]["id"]
    for before, after in itertools.pairwise(chain):
        assert after["before"]["active_template_id"] == before["after"]["active_template_id"]


# -- merchants ------------------------------------------------------------------------------------------


def test_merchant_limits_take_effect_on_the_next_start_and_null_restores_the_default(
        operator: MerchantClient, acme: MerchantClient, db: Database) -> None:
    # Given a merchant that exists (its first request provisioned it)
    persona = acme.create_persona()[1]["id"]
    with record_statements() as recorder:
        status, before, _ = operator.admin("GET", "/admin/merchants/acme", route="/admin/merchants/{merchant_id}",
                                           params={"merchant_id": "acme"})
    assert status == 200 and recorder.count == 1
    assert (before["hourly_generation_limit"], before["effective_hourly_limit"]) == (None, 10)

    # When the operator sets a limit of 0 and a budget
    status, after, _ = operator.admin("PATCH", "/admin/merchants/acme", route="/admin/merchants/{merchant_id}",
                                      params={"merchant_id": "acme"},
                                      body={"hourly_generation_limit": 0, "monthly_budget_usd": 5})

    # Then the next start is refused by the new limit; null gives the default back
    assert status == 200 and (after["effective_hourly_limit"], after["monthly_budget_usd"]) == (0, 5.0)
    assert acme.start_generation(persona, {"variation_count": 1})[0] == 429
    operator.admin("PATCH", "/admin/merchants/acme", route="/admin/merchants/{merchant_id}",
                   params={"merchant_id": "acme"}, body={"hourly_generation_limit": None})
    assert acme.start_generation(persona, {"variation_count": 1})[0] == 202
    assert acme.usage()[1]["monthly_budget_usd"] == 5.0  # the budget, not named by the second patch, stays
    # the writes are audited with before and after
    updates = [e for e in audit(operator) if e["action"] == "merchant.update_settings"]
    assert [u["after"]["hourly_generation_limit"] for u in updates] == [None, 0]
    assert updates[1]["before"] == {"hourly_generation_limit": None, "monthly_budget_usd": None}


def test_merchant_routes_validate_and_404(operator: MerchantClient) -> None:
    def patch(merchant: str, body: Any) -> int:
        status: int = operator.admin("PATCH", f"/admin/merchants/{merchant}", route="/admin/merchants/{merchant_id}",
                                     params={"merchant_id": merchant}, body=body)[0]
        return status

    assert operator.admin("GET", "/admin/merchants/nobody", route="/admin/merchants/{merchant_id}",
                          params={"merchant_id": "nobody"})[0] == 404
    assert patch("nobody", {"hourly_generation_limit": 3}) == 404
    for body in ({}, {"hourly_generation_limit": -1}, {"monthly_budget_usd": -5}, {"limit": 3},
                 {"hourly_generation_limit": "many"}):
        assert patch("ops", body) == 422, body


# -- jobs -----------------------------------------------------------------------------------------------


def test_operators_list_jobs_of_every_merchant_with_filters(operator: MerchantClient, db: Database) -> None:
    clock = FrozenClock()
    mine = start_job(db, "acme", new_persona(db, "acme"), clock=clock, job_type="character_variations")
    clock.advance(timedelta(minutes=1))
    theirs = start_job(db, "globex", new_persona(db, "globex"), clock=clock, job_type="character_variations")
    jobs.cancel_job(db, "globex", theirs, clock=clock)

    with record_statements() as recorder:
        _, everything, _ = operator.admin("GET", "/admin/jobs")
    assert recorder.count == 1
    assert [j["id"] for j in everything["items"]] == [str(theirs), str(mine)]
    assert [j["merchant_id"] for j in everything["items"]] == ["globex", "acme"]
    only_acme = operator.admin("GET", "/admin/jobs", query={"merchant_id": "acme"})[1]
    assert [j["id"] for j in only_acme["items"]] == [str(mine)]
    stopped = operator.admin("GET", "/admin/jobs", query={"status": "canceled,failed"})[1]
    assert [j["id"] for j in stopped["items"]] == [str(theirs)]
    page = operator.admin("GET", "/admin/jobs", query={"limit": "1"})[1]
    rest = operator.admin("GET", "/admin/jobs", query={"limit": "1", "cursor": page["next_cursor"]})[1]
    assert [j["id"] for j in page["items"] + rest["items"]] == [str(theirs), str(mine)]
    assert operator.admin("GET", "/admin/jobs", query={"status": "lost"})[0] == 422


def retry(operator: MerchantClient, job_id: Any) -> tuple[int, Any, dict[str, str]]:
    return operator.admin("POST", f"/admin/jobs/{job_id}/retry", route="/admin/jobs/{job_id}/retry",
                          params={"job_id": str(job_id)})


def test_retry_starts_a_new_job_outside_the_hourly_limit_inside_the_budget(
        operator: MerchantClient, db: Database, lambda_stub: LambdaStub) -> None:
    # Given a failed job of a merchant whose hourly limit is used up
    clock = FrozenClock()
    persona = new_persona(db, "acme")
    failed = start_job(db, "acme", persona, clock=clock, job_type="character_variations")
    job_data.fail_job(db, job_id=failed, retryable=False, error_code="PROVIDER_FAILED", error_message="no",
                      retry_at=None, now=clock())
    db.execute("UPDATE merchants SET hourly_generation_limit = 0 WHERE id = 'acme'")
    lambda_stub.expect_dispatch(1)

    # When the operator retries it, and retries it again while the new job runs
    status, job, headers = retry(operator, failed)
    busy = retry(operator, failed)

    # Then a new queued job names the old one and was handed to the worker; the second retry is a conflict
    assert status == 202 and job["retry_of"] == str(failed) and job["status"] == "queued"
    assert job["id"] != str(failed) and headers["Location"] == f"/jobs/{job['id']}"
    assert busy[0] == 409
    lambda_stub.stubber.assert_no_pending_responses()
    [entry] = [e for e in audit(operator) if e["action"] == "job.retry"]
    assert entry["target_id"] == str(failed) and entry["after"]["job_id"] == job["id"]


def test_retry_is_held_to_the_budget_and_to_stopped_jobs(operator: MerchantClient, db: Database) -> None:
    clock = FrozenClock()
    queued = start_job(db, "acme", new_persona(db, "acme"), clock=clock, job_type="character_variations")
    canceled = start_job(db, "acme", new_persona(db, "acme"), clock=clock, job_type="character_variations")
    jobs.cancel_job(db, "acme", canceled, clock=clock)
    db.execute("UPDATE merchants SET monthly_budget_usd = 0.12 WHERE id = 'acme'")  # the queued job reserves it

    assert retry(operator, queued)[0] == 409  # only failed or canceled jobs
    status, error, _ = retry(operator, canceled)
    assert status == 402 and error["error"]["code"] == "BUDGET_EXCEEDED"
    assert retry(operator, "00000000-0000-0000-0000-000000000009")[0] == 404
    assert retry(operator, "not-a-uuid")[0] == 422


def test_the_audit_trail_pages_newest_first(operator: MerchantClient) -> None:
    for _ in range(3):
        create_template(operator)
    with record_statements() as recorder:
        first = operator.admin("GET", "/admin/audit", query={"limit": "2"})[1]
    rest = operator.admin("GET", "/admin/audit", query={"limit": "2", "cursor": first["next_cursor"]})[1]
    versions = [e["after"]["version"] for e in first["items"] + rest["items"]]
    assert recorder.count == 1 and versions == [3, 2, 1] and rest["next_cursor"] is None
    assert all(e["actor"] == "operator-ann" and e["before"] is None for e in first["items"])
    assert operator.admin("GET", "/admin/audit", query={"cursor": "bad"})[0] == 400


# -- models ---------------------------------------------------------------------------------------------


def patch_model(operator: MerchantClient, model_id: str, **body: Any) -> tuple[int, Any, dict[str, str]]:
    return operator.admin("PATCH", f"/admin/models/{model_id}", route="/admin/models/{model_id}",
                          params={"model_id": model_id}, body=body)


def default_of(db: Database, kind: str) -> str:
    model: str = db.fetch_value("SELECT model_id FROM model_configurations WHERE is_default AND media_type = %s",
                                (kind,))
    return model


def test_operators_list_every_model_and_switch_the_default_atomically(operator: MerchantClient,
                                                                       db: Database) -> None:
    # Given the registry: some image models enabled, some disabled (eol)
    status, listed, _ = operator.admin("GET", "/admin/models")
    assert status == 200
    ids = {m["id"]: m for m in listed["items"]}
    assert len(ids) == db.fetch_value("SELECT count(*) FROM model_configurations")
    disabled = [m for m in listed["items"] if not m["enabled"]]
    assert disabled, "the seed keeps disabled rows (eol models)"
    old_default = default_of(db, "image")
    other = next(m["id"] for m in listed["items"] if m["kind"] == "image" and m["enabled"] and not m["default"])

    # When another enabled image model is made the default
    status, model, _ = patch_model(operator, other, default=True)

    # Then it is the one default of its kind, the old one is not, and the change is audited
    assert status == 200 and model["default"] is True, model
    assert default_of(db, "image") == other
    assert db.fetch_value("SELECT count(*) FROM model_configurations WHERE is_default AND media_type = 'image'") == 1
    assert ids[old_default]["default"] is True
    (entry, *_) = audit(operator)
    assert (entry["action"], entry["target_id"], entry["before"]["default"], entry["after"]["default"]) == (
        "model.update", other, False, True)


def test_a_default_cannot_be_disabled_nor_an_unusable_model_made_default(operator: MerchantClient,
                                                                          db: Database) -> None:
    default = default_of(db, "video")
    assert patch_model(operator, default, enabled=False)[0] == 409
    eol = db.fetch_value("SELECT model_id FROM model_configurations WHERE lifecycle = 'eol' LIMIT 1")
    assert patch_model(operator, eol, default=True)[0] == 409
    assert patch_model(operator, "no.such-model:0", enabled=True)[0] == 404
    assert patch_model(operator, default)[0] == 422  # nothing to change
    assert patch_model(operator, default, unit_price_usd=-1)[0] == 422
    assert default_of(db, "video") == default
    assert db.fetch_value("SELECT count(*) FROM admin_audit") == 0


def test_a_price_change_applies_to_jobs_started_afterwards_only(operator: MerchantClient, db: Database) -> None:
    # Given a job started at the default image model's price
    clock = FrozenClock()
    model = default_of(db, "image")
    before = start_job(db, "acme", new_persona(db, "acme"), clock=clock, job_type="character_variations", count=1)

    # When an operator doubles the price, and another job starts
    price = db.fetch_value("SELECT unit_price_usd FROM model_configurations WHERE model_id = %s", (model,))
    status, changed, _ = patch_model(operator, model, unit_price_usd=str(price * 2), price_source="test, 2026-12")
    after = start_job(db, "acme", new_persona(db, "acme", "Other"), clock=clock, job_type="character_variations",
                      count=1)

    # Then each job is priced as when it started, in its estimate and in what its outputs cost
    assert status == 200 and changed["unit_price_usd"] == float(price * 2)
    assert changed["price_source"] == "test, 2026-12"
    rows = {r["id"]: r for r in db.fetch_all(
        "SELECT id, unit_price_usd, estimated_cost_usd FROM generation_jobs WHERE id IN (%s, %s)", (before, after))}
    assert (rows[before]["unit_price_usd"], rows[after]["unit_price_usd"]) == (price, price * 2)
    for job_id, unit in ((before, price), (after, price * 2)):
        db.execute("INSERT INTO character_variations (job_id, persona_id, merchant_id, variation_index, seed, "
                   "image_url) SELECT id, persona_id, merchant_id, 0, 1, 'u' FROM generation_jobs WHERE id = %s",
                   (job_id,))
        cost = db.fetch_value("SELECT (genjobs_job_cost_v1(j)).amount_usd FROM generation_jobs j WHERE id = %s",
                              (job_id,))
        assert cost == unit
