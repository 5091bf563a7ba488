"""The runner's API Gateway over real HTTP: public and protected routes, the JWT authorizer's answers,
unknown routes, tenant isolation, media files, Swagger UI."""

from __future__ import annotations

import base64
import json
import uuid

import jwt
import pytest

from local_runner.settings import DEFAULT_SECRET, local_settings
from local_runner.template import read_functions
from tests.support.runner_process import Merchant, RunnerProcess, get_url, request, token_for

UNAUTHORIZED = {"message": "Unauthorized"}
ROUTES = [r for spec in read_functions() for r in spec.routes]
PROTECTED = [r for r in ROUTES if r.authorizer]


def _concrete(path: str) -> str:
    return "/".join(str(uuid.uuid4()) if s.startswith("{") else s for s in path.split("/"))


def test_health_is_public(runner: RunnerProcess) -> None:
    reply = request(runner.base_url, "GET", "/health")
    assert reply.status == 200, reply.body
    body = reply.json
    assert body["database"] == "reachable"
    assert body["pending_migrations"] == []
    assert reply.header("apigw-requestid")


def test_the_template_protects_every_route_but_health() -> None:
    assert [r.route_key for r in ROUTES if not r.authorizer] == ["GET /health"]
    assert len(PROTECTED) >= 11


@pytest.mark.parametrize("route", PROTECTED, ids=lambda r: r.route_key)
def test_protected_routes_answer_401_without_a_token(runner: RunnerProcess, route) -> None:
    body: dict[str, str] | None = {} if route.method == "POST" else None
    reply = request(runner.base_url, route.method, _concrete(route.path), body=body)
    assert reply.status == 401
    assert reply.json == UNAUTHORIZED
    assert reply.header("www-authenticate") == "Bearer"


def _forged(claims: dict[str, object], key: str = "x" * 40, algorithm: str = "HS256") -> str:
    return jwt.encode(claims, key, algorithm=algorithm)


def _unsigned(claims: dict[str, object]) -> str:
    def part(data: dict[str, object]) -> str:
        return base64.urlsafe_b64encode(json.dumps(data).encode()).rstrip(b"=").decode()

    return f"{part({'alg': 'none', 'typ': 'JWT'})}.{part(claims)}."


@pytest.mark.parametrize(("label", "header"), [
    ("garbage", "Bearer not-a-jwt"),
    ("wrong secret", "Bearer " + _forged({"merchant_id": "acme"})),
    ("alg none", "Bearer " + _unsigned({"merchant_id": "acme"})),
    ("expired", "expired"),
    ("not yet valid", "nbf"),
    ("empty bearer", "Bearer "),
    ("basic auth", "Basic YWNtZTphY21l"),
    ("no exp", "no-exp"),
    ("merchant claim true", "merchant-true"),
    ("merchant claim null", "merchant-null"),
    ("merchant claim list", "merchant-list"),
])
def test_bad_tokens_answer_401_like_api_gateway(runner: RunnerProcess, label: str, header: str) -> None:
    if header == "expired":
        header = "Bearer " + token_for("acme", hours=-1)
    elif header == "no-exp":
        header = "Bearer " + jwt.encode({"merchant_id": "acme"}, local_settings().jwt_secret, algorithm="HS256")
    elif header.startswith("merchant-"):
        value = {"merchant-true": True, "merchant-null": None, "merchant-list": ["acme", "globex"]}[header]
        header = "Bearer " + jwt.encode({"merchant_id": value, "exp": 4_000_000_000}, local_settings().jwt_secret,
                                        algorithm="HS256")
    elif header == "nbf":
        header = "Bearer " + token_for("acme", extra_claims={"nbf": 4_000_000_000})
    reply = request(runner.base_url, "GET", "/usage", headers={"Authorization": header})
    assert reply.status == 401, label
    assert reply.json == UNAUTHORIZED
    assert (reply.header("www-authenticate") or "").startswith("Bearer")


def test_a_token_without_the_merchant_claim_reaches_the_function_which_refuses_it(runner: RunnerProcess) -> None:
    token = jwt.encode({"sub": "someone", "exp": 4_000_000_000}, local_settings().jwt_secret, algorithm="HS256")
    reply = request(runner.base_url, "GET", "/usage", token=token)
    assert reply.status == 401
    assert reply.json["error"]["code"] == "UNAUTHORIZED"


def test_operator_routes_answer_403_without_the_admin_scope_like_api_gateway(runner: RunnerProcess) -> None:
    # Given a merchant's token (no scope), one with another scope, and an operator's (make token SCOPE=genjobs/admin)
    plain = token_for("ops")
    other = token_for("ops", extra_claims={"scope": "openid genjobs/read"})
    operator = token_for("ops", extra_claims={"scope": "openid genjobs/admin"})

    # When each reads the audit trail
    replies = [request(runner.base_url, "GET", "/admin/audit", token=t) for t in (plain, other, operator)]

    # Then the gateway refuses the first two with 403 Forbidden before the function runs; the operator reads it
    assert [r.status for r in replies] == [403, 403, 200]
    assert replies[0].json == replies[1].json == {"message": "Forbidden"}
    assert "items" in replies[2].json
    # and without any token it is the authorizer's 401, as on every protected route
    assert request(runner.base_url, "GET", "/admin/audit").status == 401


def test_the_token_is_accepted_without_the_bearer_prefix_as_api_gateway_does(merchant: Merchant) -> None:
    reply = request(merchant.base_url, "GET", "/usage", headers={"Authorization": merchant.token})
    assert reply.status == 200, reply.body


def test_default_secret_is_long_enough_for_hs256() -> None:
    assert len(DEFAULT_SECRET.encode()) >= 32


@pytest.mark.parametrize(("method", "path"), [
    ("GET", "/nope"), ("GET", "/jobs/"), ("PUT", "/personas"), ("PATCH", "/jobs/x"), ("POST", "/health"),
])
def test_unknown_routes_answer_404_not_found(runner: RunnerProcess, method: str, path: str) -> None:
    reply = request(runner.base_url, method, path)
    assert reply.status == 404
    assert reply.json == {"message": "Not Found"}


def test_usage_for_a_new_merchant(merchant: Merchant) -> None:
    reply = merchant.call("GET", "/usage")
    assert reply.status == 200, reply.body
    assert reply.json["remaining"] == reply.json["hourly_limit"]


def test_invalid_json_is_400_and_invalid_fields_422(merchant: Merchant) -> None:
    bad = merchant.call("POST", "/personas", raw_body=b"{not json", headers={"Content-Type": "application/json"})
    assert bad.status == 400, bad.body
    assert bad.json["error"]["code"] == "BAD_REQUEST"
    invalid = merchant.call("POST", "/personas", {"name": ""})
    assert invalid.status == 422, invalid.body
    assert invalid.json["error"]["code"] == "VALIDATION_ERROR"


def test_another_merchants_persona_and_job_are_404(merchant: Merchant, other_merchant: Merchant) -> None:
    created = merchant.call("POST", "/personas", {"name": "Private Pete"})
    assert created.status == 201, created.body
    persona_id = created.json["id"]
    started = merchant.call("POST", f"/personas/{persona_id}/generations", {"variation_count": 1})
    assert started.status == 202, started.body
    job_id = started.json["id"]

    attempts: list[tuple[str, str, dict[str, str] | None]] = [
        ("GET", f"/personas/{persona_id}", None),
        ("POST", f"/personas/{persona_id}/generations", {}),
        ("GET", f"/personas/{persona_id}/variations", None),
        ("POST", f"/personas/{persona_id}/state-videos", {}),
        ("GET", f"/jobs/{job_id}", None),
        ("GET", f"/jobs/{job_id}/events", None),
        ("POST", f"/jobs/{job_id}/cancel", None),
        ("DELETE", f"/personas/{persona_id}", None),
    ]
    for method, path, body in attempts:
        reply = other_merchant.call(method, path, body)
        assert reply.status == 404, (method, path, reply.status, reply.body)
        assert reply.json["error"]["code"] == "NOT_FOUND", (method, path)
    listed = other_merchant.call("GET", "/jobs")
    assert listed.status == 200, listed.body
    assert listed.json["items"] == []
    # ...and the owner still sees both, untouched
    assert merchant.call("GET", f"/personas/{persona_id}").status == 200
    assert merchant.call("GET", f"/jobs/{job_id}?wait=10").status == 200


def test_media_files_are_served_without_a_token_and_without_escaping_the_media_directory(
        runner: RunnerProcess) -> None:
    media = runner.local_dir / "media" / "e2e" / f"{uuid.uuid4().hex}.png"
    media.parent.mkdir(parents=True, exist_ok=True)
    media.write_bytes(b"\x89PNG\r\n\x1a\nfake")
    url = f"{runner.base_url}/media/{media.relative_to(runner.local_dir / 'media')}"
    reply = get_url(url)
    assert reply.status == 200
    assert reply.header("content-type") == "image/png"
    assert reply.body == media.read_bytes()
    ranged = request(runner.base_url, "GET", url.removeprefix(runner.base_url), headers={"Range": "bytes=0-3"})
    assert ranged.status == 206
    assert ranged.body == b"\x89PNG"
    (runner.local_dir / "secret.txt").write_text("not media")
    for path in ["/media/../secret.txt", "/media/%2e%2e/secret.txt", "/media/e2e/../../secret.txt",
                 "/media/%2Fetc%2Fpasswd", "/media/", "/media/e2e/missing.png"]:
        assert request(runner.base_url, "GET", path).status == 404, path


def test_swagger_ui_and_openapi_are_served(runner: RunnerProcess) -> None:
    page = request(runner.base_url, "GET", "/docs")
    assert page.status == 200
    assert b"swagger-ui-bundle.min.js" in page.body
    assert b'url: "/openapi.json"' in page.body
    for asset in ("/docs/swagger-ui-bundle.min.js", "/docs/swagger-ui.min.css"):
        reply = request(runner.base_url, "GET", asset)
        assert reply.status == 200, asset
        assert len(reply.body) > 10_000
    document = request(runner.base_url, "GET", "/openapi.json")
    assert document.status == 200
    assert document.json["openapi"].startswith("3.1")
    assert document.json["info"]["title"] == "genjobs"


def test_concurrent_requests_of_two_merchants_never_see_each_other(merchant: Merchant,
                                                                    other_merchant: Merchant) -> None:
    """Many requests in flight at once (several containers per function, many threads): each one is
    answered with its own merchant's identity. Without the runner's per-thread request state
    (local_runner/isolation.py) this load makes powertools hand some requests the other merchant's claims
    (seen as a 404 for one's own persona)."""
    from concurrent.futures import ThreadPoolExecutor

    mine = merchant.call("POST", "/personas", {"name": "Mine"}).json["id"]
    theirs = other_merchant.call("POST", "/personas", {"name": "Theirs"}).json["id"]

    def fetch(i: int) -> tuple[int, str, str]:
        who, persona = (merchant, mine) if i % 2 else (other_merchant, theirs)
        reply = who.call("GET", f"/personas/{persona}")
        return reply.status, persona, reply.json.get("id", reply.json)

    with ThreadPoolExecutor(max_workers=32) as pool:
        results = list(pool.map(fetch, range(400)))
    wrong = [r for r in results if r[0] != 200 or r[1] != r[2]]
    assert not wrong, wrong[:5]


@pytest.mark.parametrize("method", ["TRACE", "QUERY", "FOO"])
def test_methods_the_standard_library_does_not_know_are_404_not_501(runner: RunnerProcess, method: str) -> None:
    # found by the fuzz: http.server answered 501 for methods without a do_<METHOD>
    reply = request(runner.base_url, method, "/health")
    assert reply.status == 404
    assert reply.json == {"message": "Not Found"}
