"""The runner's pieces, in-process and fast: API Gateway event and response mapping, route matching, the
authorizer, in-process invokes, S3 notifications, schedules, stale-server recovery, per-thread request state."""

from __future__ import annotations

import base64
import copy
import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path
from typing import Any
from urllib.parse import unquote_plus

import jwt
import pytest
from aws_lambda_powertools.event_handler import APIGatewayHttpResolver
from aws_lambda_powertools.utilities.data_classes import APIGatewayProxyEventV2, S3Event
from genjobs.entry import event_kind
from genjobs.ports import InvokeFailed
from pydantic import ValidationError

from local_runner.apigw import BadIntegrationResponse, HttpRequest, build_event, map_response
from local_runner.auth import Authorization, JwtAuthorizer, Rejection, issue_token
from local_runner.embedded import recover_stale_state
from local_runner.lambdas import FunctionPool, InProcessInvoker, LocalLambdas
from local_runner.runner import (
    S3Subscription,
    function_names,
    local_cursor_keys,
    s3_subscriptions,
    scheduled_event,
    schedules,
)
from local_runner.s3_events import s3_object_created_event
from local_runner.settings import LocalSettings
from local_runner.template import FunctionSpec, Route, RouteTable, load_template, read_functions
from tests.support.runner_process import REPO_ROOT

SECRET = "unit-test-secret-that-is-long-enough-0123456789"


def _request(**overrides: Any) -> HttpRequest:
    values: dict[str, Any] = {
        "method": "POST", "raw_path": "/personas/abc%20def/generations", "raw_query": "a=1&b=x%20y&a=2&empty=",
        "headers": [("Host", "127.0.0.1:3000"), ("Content-Type", "application/json"), ("X-Multi", "one"),
                    ("X-Multi", "two"), ("Cookie", "s=1; theme=dark"), ("User-Agent", "curl/8")],
        "body": b'{"variation_count": 2}', "source_ip": "127.0.0.1",
    }
    values.update(overrides)
    return HttpRequest(**values)


def test_event_has_the_payload_format_2_shape() -> None:
    auth = Authorization(claims={"merchant_id": "acme", "exp": "4000000000"}, scopes=None)
    event = build_event(_request(), route_key="POST /personas/{persona_id}/generations",
                        path_parameters={"persona_id": "abc def"}, authorization=auth, now_ms=1_795_694_400_000)
    assert event["version"] == "2.0"
    assert event["routeKey"] == "POST /personas/{persona_id}/generations"
    assert event["rawPath"] == "/personas/abc%20def/generations"
    assert event["rawQueryString"] == "a=1&b=x%20y&a=2&empty="
    assert event["queryStringParameters"] == {"a": "1,2", "b": "x y", "empty": ""}
    assert event["pathParameters"] == {"persona_id": "abc def"}
    assert event["cookies"] == ["s=1", "theme=dark"]
    assert "cookie" not in event["headers"]
    assert event["headers"]["x-multi"] == "one,two"
    assert event["headers"]["host"] == "127.0.0.1:3000"
    assert event["headers"]["x-forwarded-port"] == "3000"
    assert all(k == k.lower() for k in event["headers"])
    assert event["body"] == '{"variation_count": 2}'
    assert event["isBase64Encoded"] is False
    ctx = event["requestContext"]
    assert ctx["stage"] == "$default"
    assert ctx["http"] == {"method": "POST", "path": "/personas/abc%20def/generations", "protocol": "HTTP/1.1",
                           "sourceIp": "127.0.0.1", "userAgent": "curl/8"}
    assert ctx["routeKey"] == event["routeKey"]
    assert ctx["time"] == "26/Nov/2026:12:00:00 +0000"
    assert ctx["timeEpoch"] == 1_795_694_400_000
    assert ctx["authorizer"] == {"jwt": {"claims": {"merchant_id": "acme", "exp": "4000000000"}, "scopes": None}}
    parsed = APIGatewayProxyEventV2(event)
    assert parsed.request_context.authorizer.jwt_claim == {"merchant_id": "acme", "exp": "4000000000"}
    assert parsed.query_string_parameters == {"a": "1,2", "b": "x y", "empty": ""}
    assert parsed.cookies == ["s=1", "theme=dark"]
    assert json.loads(parsed.body or "") == {"variation_count": 2}


def test_binary_bodies_are_base64_and_public_routes_have_no_authorizer() -> None:
    body = bytes(range(256))
    event = build_event(_request(headers=[("Content-Type", "image/png")], body=body, raw_query=""),
                        route_key="POST /x", path_parameters={}, authorization=None)
    assert event["isBase64Encoded"] is True
    assert base64.b64decode(event["body"]) == body
    assert "authorizer" not in event["requestContext"]
    assert "queryStringParameters" not in event
    assert "pathParameters" not in event
    empty = build_event(_request(body=b"", raw_query=""), route_key="GET /x", path_parameters={}, authorization=None)
    assert "body" not in empty


def test_events_drive_a_powertools_resolver() -> None:
    app = APIGatewayHttpResolver(enable_validation=True)

    @app.get("/items/<item_id>")
    def get_item(item_id: str) -> dict[str, Any]:
        claims = app.current_event.request_context.authorizer.jwt_claim
        return {"id": item_id, "merchant": claims["merchant_id"], "q": app.current_event.get_query_string_value("q")}

    event = build_event(_request(method="GET", raw_path="/items/42", raw_query="q=hello", body=b""),
                        route_key="GET /items/{item_id}", path_parameters={"item_id": "42"},
                        authorization=Authorization({"merchant_id": "acme"}, None))
    response = map_response(app.resolve(event, None), "req-1")  # type: ignore[arg-type]
    assert response.status == 200
    assert json.loads(response.body) == {"id": "42", "merchant": "acme", "q": "hello"}


def test_responses_map_back_faithfully() -> None:
    response = map_response({
        "statusCode": 201, "headers": {"Content-Type": "text/plain", "X-Flag": True},
        "multiValueHeaders": {"X-Many": ["a", "b"]}, "cookies": ["a=1; Path=/", "b=2"],
        "body": base64.b64encode(b"\x00\x01hi").decode(), "isBase64Encoded": True,
    }, "req-1")
    assert response.status == 201
    assert response.body == b"\x00\x01hi"
    assert ("Set-Cookie", "a=1; Path=/") in response.headers
    assert ("Set-Cookie", "b=2") in response.headers
    assert ("X-Many", "a") in response.headers and ("X-Many", "b") in response.headers
    assert response.header("x-flag") == "true"
    assert response.header("apigw-requestid") == "req-1"
    inferred = map_response({"hello": "world"}, "req-2")
    assert (inferred.status, json.loads(inferred.body)) == (200, {"hello": "world"})
    assert inferred.header("content-type") == "application/json"
    with pytest.raises(BadIntegrationResponse):
        map_response({"statusCode": "abc"}, "req-3")
    with pytest.raises(BadIntegrationResponse):
        map_response({"statusCode": 200, "body": "%%%", "isBase64Encoded": True}, "req-4")


def test_routes_match_like_http_apis() -> None:
    table = RouteTable([
        Route("f", "GET", "/jobs", "jwt"), Route("f", "GET", "/jobs/{job_id}", "jwt"),
        Route("f", "GET", "/jobs/special", "jwt"), Route("g", "ANY", "/files/{path+}", None),
        Route("g", "POST", "/jobs/{job_id}/cancel", "jwt"),
    ])
    assert table.match("GET", "/jobs/special")[0].path == "/jobs/special"  # type: ignore[index]
    route, params = table.match("GET", "/jobs/a%2Fb")  # type: ignore[misc]
    assert (route.path, params) == ("/jobs/{job_id}", {"job_id": "a/b"})
    assert table.match("GET", "/files/a/b/c") == (Route("g", "ANY", "/files/{path+}", None), {"path": "a/b/c"})
    assert table.match("DELETE", "/jobs/1") is None
    assert table.match("GET", "/jobs/") is None
    assert table.match("GET", "/jobs/1/cancel") is None
    assert table.match("POST", "/jobs/1/cancel") is not None
    with pytest.raises(ValueError, match="declared twice"):
        RouteTable([Route("f", "GET", "/a", None), Route("g", "GET", "/a", None)])


def test_template_functions_routes_schedules_and_s3_notifications() -> None:
    template = load_template()
    specs = read_functions(template)
    by_name = {s.name: s for s in specs}
    assert set(by_name) == {"generation", "worker", "progress", "limits", "approval", "migrate", "maintenance",
                            "admin", "webhooks"}
    retry = next(r for r in by_name["admin"].routes if r.path == "/admin/jobs/{job_id}/retry")
    assert retry.scopes == ("genjobs/admin",) and retry.authorizer == "JwtAuthorizer"
    assert {r.route_key for r in by_name["progress"].routes} >= {"GET /health", "GET /jobs/{job_id}"}
    assert next(r for r in by_name["progress"].routes if r.path == "/health").authorizer is None
    assert by_name["worker"].timeout_seconds == 900 and by_name["generation"].timeout_seconds == 30
    assert by_name["maintenance"].max_async_retries == 0
    assert all(s.module_path.exists() for s in specs)
    assert schedules(template, specs) == {"maintenance": 60}
    subs = s3_subscriptions(template, specs)
    assert [(s.function, s.prefix, s.suffix) for s in subs] == [("progress", "jobs/", ".mp4")]
    # a SAM S3 event of the function reads the same as the bucket's notification
    sam_shaped = copy.deepcopy(template)
    config = sam_shaped["Resources"]["MediaBucket"]["Properties"].pop("NotificationConfiguration")
    (lambda_config,) = config["LambdaConfigurations"]
    sam_shaped["Resources"]["ProgressFunction"]["Properties"]["Events"]["VideoOutputCreated"] = {
        "Type": "S3", "Properties": {"Bucket": {"Ref": "MediaBucket"}, "Events": lambda_config["Event"],
                                     "Filter": lambda_config["Filter"]}}
    assert s3_subscriptions(sam_shaped, specs) == subs
    assert subs[0].wants("jobs/1/idle/abc/output.mp4", "ObjectCreated:Put")
    assert not subs[0].wants("jobs/1/variations/0.png", "ObjectCreated:Put")
    assert not S3Subscription("p", "", "", ("s3:ObjectRemoved:*",)).wants("k", "ObjectCreated:Put")
    names = function_names(specs, worker_function="stack-worker")
    assert names["stack-worker"] == "worker"
    assert names["genjobs-progress"] == "progress"


def test_tokens_and_the_authorizer() -> None:
    authorizer = JwtAuthorizer(SECRET)
    token = issue_token("acme", secret=SECRET, extra_claims={"groups": ["a", "b"], "admin": False, "n": 1.0})
    verdict = authorizer.authorize(f"Bearer {token}")
    assert isinstance(verdict, Authorization)
    assert verdict.claims["merchant_id"] == "acme"
    assert verdict.claims["groups"] == "[a b]"
    assert verdict.claims["admin"] == "false"
    assert verdict.claims["n"] == "1"
    assert verdict.claims["exp"].isdigit()
    assert isinstance(authorizer.authorize(token), Authorization)  # without the Bearer prefix
    assert isinstance(authorizer.authorize(None), Rejection)
    expired = issue_token("acme", secret=SECRET, hours=-1)
    assert authorizer.authorize(f"Bearer {expired}") == Rejection("the token has expired")
    hs512 = jwt.encode({"merchant_id": "acme"}, SECRET * 2, algorithm="HS512")
    assert isinstance(JwtAuthorizer(SECRET * 2).authorize(f"Bearer {hs512}"), Rejection)  # HS256 only
    no_exp = jwt.encode({"merchant_id": "acme"}, SECRET, algorithm="HS256")
    assert authorizer.authorize(f"Bearer {no_exp}") == Rejection("the token has no exp claim")
    scoped = JwtAuthorizer(SECRET).authorize(f"Bearer {token}", ("jobs/read",))
    assert isinstance(scoped, Rejection) and scoped.status == 403  # a valid token without the scope: 403
    operator = issue_token("ops", secret=SECRET, extra_claims={"scope": "openid genjobs/admin"})
    allowed = JwtAuthorizer(SECRET).authorize(f"Bearer {operator}", ("genjobs/admin",))
    assert isinstance(allowed, Authorization) and allowed.scopes == ["openid", "genjobs/admin"]
    assert allowed.claims["scope"] == "openid genjobs/admin"


def test_the_authorizer_is_as_strict_as_api_gateway_and_refuses_merchant_claims_that_are_not_strings() -> None:
    # Given the emulated authorizer
    authorizer = JwtAuthorizer(SECRET)
    exp = 4_000_000_000

    # When tokens carry a merchant claim that is null, true, a number, a list or an object
    # Then each is refused before the function (no tenant named "None", "true" or "[a b]")
    for value in (None, True, 7, ["a", "b"], {"id": "acme"}):
        token = jwt.encode({"merchant_id": value, "exp": exp}, SECRET, algorithm="HS256")
        assert authorizer.authorize(f"Bearer {token}") == Rejection("the merchant_id claim is not a string"), value

    # And a token issued in the future (iat after now) is refused, as API Gateway refuses it
    future = jwt.encode({"merchant_id": "acme", "exp": exp, "iat": exp - 10}, SECRET, algorithm="HS256")
    assert isinstance(authorizer.authorize(f"Bearer {future}"), Rejection)

    # And other claims that are null are presented as JSON spells them, never as Python's "None"
    token = issue_token("acme", secret=SECRET, extra_claims={"nickname": None})
    verdict = authorizer.authorize(token)
    assert isinstance(verdict, Authorization) and verdict.claims["nickname"] == "null"

    # And a string claim with edge whitespace passes the gateway (it is the layer that refuses it, 401)
    spaced = issue_token(" acme ", secret=SECRET)
    verdict = authorizer.authorize(spaced)
    assert isinstance(verdict, Authorization) and verdict.claims["merchant_id"] == " acme "


def test_cursor_keys_are_generated_once_under_local_and_rotate_by_a_new_first_line(tmp_path: Path) -> None:
    # Given a fresh .local directory, When the runner asks for its cursor keys twice
    first = local_cursor_keys(tmp_path)
    # Then one key was generated, kept private, and is the same the second time
    assert first == local_cursor_keys(tmp_path) and "," not in first and len(first) >= 32
    assert (tmp_path / "cursor-keys").stat().st_mode & 0o077 == 0

    # When a new key is put first, Then it signs and the previous one still verifies
    (tmp_path / "cursor-keys").write_text("a-new-local-cursor-key-0123456789abcdef\n" + first + "\n")
    assert local_cursor_keys(tmp_path) == f"a-new-local-cursor-key-0123456789abcdef,{first}"


def test_s3_notification_shape_and_key_encoding() -> None:
    key = "jobs/3f0c/idle/inv 1+2/output.mp4"
    event = s3_object_created_event("genjobs-media-local", key, 42, data=b"x" * 42)
    record = event["Records"][0]
    assert record["eventSource"] == "aws:s3"
    assert record["eventName"] == "ObjectCreated:Put"
    assert record["eventVersion"] == "2.1"
    assert record["eventTime"].endswith("Z")
    assert record["s3"]["bucket"] == {"name": "genjobs-media-local", "arn": "arn:aws:s3:::genjobs-media-local",
                                      "ownerIdentity": record["s3"]["bucket"]["ownerIdentity"]}
    obj = record["s3"]["object"]
    assert obj["key"] == "jobs/3f0c/idle/inv+1%2B2/output.mp4"
    assert obj["size"] == 42
    assert len(obj["eTag"]) == 32
    assert len(obj["sequencer"]) >= 16
    assert event_kind(event) == "s3"
    assert S3Event(event).object_key == key  # readers decode: unquote_plus
    parsed = next(iter(S3Event(event).records))
    assert unquote_plus(parsed.s3.get_object.key) == key
    assert parsed.s3.bucket.name == "genjobs-media-local"
    later = s3_object_created_event("b", key, 1)["Records"][0]["s3"]["object"]["sequencer"]
    assert int(later, 16) > int(obj["sequencer"], 16)
    assert event_kind(scheduled_event("rule")) == "schedule"


def _spec(tmp_path: Path, name: str, source: str, retries: int = 2) -> FunctionSpec:
    code = tmp_path / name
    code.mkdir()
    (code / "app.py").write_text(textwrap.dedent(source))
    return FunctionSpec(logical_id=name.title(), name=name, code_dir=code, handler="app.lambda_handler",
                        timeout_seconds=3, memory_mb=128, max_async_retries=retries)


def test_in_process_invokes(tmp_path: Path) -> None:
    echo = _spec(tmp_path, "echo", """
        CONTAINER = object()
        calls = []
        def lambda_handler(event, context):
            calls.append(event)
            return {"event": event, "function": context.function_name,
                    "remaining": context.get_remaining_time_in_millis(), "container": id(CONTAINER)}
    """)
    flaky = _spec(tmp_path, "flaky", """
        calls = []
        def lambda_handler(event, context):
            calls.append(event)
            raise RuntimeError("boom")
    """, retries=1)
    bad_result = _spec(tmp_path, "badresult", """
        import datetime
        def lambda_handler(event, context):
            return {"when": datetime.datetime.now()}
    """)
    lambdas = LocalLambdas([echo, flaky, bad_result], {"genjobs-echo": "echo", "genjobs-flaky": "flaky",
                                                       "genjobs-badresult": "badresult"})
    invoker = InProcessInvoker(lambdas, workers=2, retry_delays=(0.01,))
    try:
        result = invoker.invoke_sync("genjobs-echo", {"n": 1})
        assert result["event"] == {"n": 1}
        assert result["function"] == "genjobs-echo"
        assert 0 < result["remaining"] <= 3000
        arn = "arn:aws:lambda:us-east-1:123456789012:function:genjobs-echo"
        assert invoker.invoke_sync(arn, {"n": 2})["container"] == result["container"]  # warm container reused
        with pytest.raises(InvokeFailed, match="not found"):
            invoker.invoke_sync("genjobs-missing", {})
        with pytest.raises(InvokeFailed, match="RuntimeError"):
            invoker.invoke_sync("genjobs-flaky", {})
        with pytest.raises(InvokeFailed, match="not JSON serializable"):
            invoker.invoke_sync("genjobs-badresult", {})
        with pytest.raises(TypeError):
            invoker.invoke_async("genjobs-echo", {"x": object()})  # boto3 would fail to serialise it too
        flaky_module = lambdas.pool("flaky").warm().module
        flaky_module.calls.clear()
        invoker.invoke_async("genjobs-flaky", {"n": 3})
        assert invoker.drain(timeout=5)
        assert invoker.shutdown(timeout=1)
        assert flaky_module.calls == [{"n": 3}, {"n": 3}]  # first try + MaximumRetryAttempts 1
        with pytest.raises(InvokeFailed, match="stopping"):
            invoker.invoke_async("genjobs-echo", {})
    finally:
        invoker.shutdown(timeout=1)


def test_busy_containers_make_new_ones(tmp_path: Path) -> None:
    import threading

    slow = _spec(tmp_path, "slow", """
        import threading, time
        CONTAINER = object()
        def lambda_handler(event, context):
            time.sleep(0.2)
            return id(CONTAINER)
    """)
    pool = FunctionPool(slow, "genjobs-slow", max_containers=3)
    results: list[int] = []
    threads = [threading.Thread(target=lambda: results.append(pool.invoke({}))) for _ in range(3)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(set(results)) == 3


def test_settings_from_env_validate(monkeypatch: pytest.MonkeyPatch) -> None:
    def read(**env: str) -> LocalSettings:
        for name in ("PORT", "LOCAL_MEDIA_DELAY_MS", "MAINTENANCE_INTERVAL_SECONDS", "LOCAL_ASYNC_WORKERS",
                     "LOCAL_JWT_SECRET"):
            monkeypatch.delenv(name, raising=False)
        for name, value in env.items():
            monkeypatch.setenv(name, value)
        return LocalSettings()

    assert read().port == 3000
    assert read(PORT="0", LOCAL_MEDIA_DELAY_MS="5").media_delay_ms == 5
    assert read(MAINTENANCE_INTERVAL_SECONDS="1.5").maintenance_interval_seconds == 1.5
    with pytest.raises(ValidationError, match="port"):
        read(PORT="http")
    with pytest.raises(ValidationError, match="async_workers"):
        read(LOCAL_ASYNC_WORKERS="0")
    with pytest.raises(ValidationError, match="at least 32 bytes"):
        read(LOCAL_JWT_SECRET="short")


def test_stale_state_left_by_a_killed_run_is_cleaned(tmp_path: Path) -> None:
    pgdata = tmp_path / "pgdata"
    pgdata.mkdir()
    (pgdata / "PG_VERSION").write_text("16\n")
    dead = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True,
                          check=True)
    dead_pid = int(dead.stdout)
    (pgdata / ".handle_pids.json").write_text(json.dumps([dead_pid, os.getpid()]))
    # a postmaster.pid naming a live process that is not PostgreSQL (a pid reused after a crash)
    (pgdata / "postmaster.pid").write_text(f"{os.getpid()}\n{pgdata}\n1\n5432\n{pgdata}\n\n  1  2\nready\n")
    (pgdata / ".s.PGSQL.5432.lock").write_text(f"{dead_pid}\n")
    actions = recover_stale_state(pgdata)
    assert json.loads((pgdata / ".handle_pids.json").read_text()) == [os.getpid()]
    assert not (pgdata / "postmaster.pid").exists()
    assert not (pgdata / ".s.PGSQL.5432.lock").exists()
    assert any("stale postmaster.pid" in a for a in actions)

    half = tmp_path / "half" / "pgdata"
    (half / "base").mkdir(parents=True)
    assert recover_stale_state(half) and not half.exists()  # an interrupted initdb leaves no data


def test_request_state_is_per_thread_once_isolated() -> None:
    """Concurrent resolves on separate resolvers: with the runner's isolation each request reads its own
    claims; without it, powertools' class-level state leaks between threads (checked in a subprocess,
    so this test process keeps stock powertools)."""
    script = textwrap.dedent("""
        import json, sys, threading, time
        from aws_lambda_powertools.event_handler import APIGatewayHttpResolver
        if sys.argv[1] == "isolated":
            from local_runner.isolation import make_router_state_thread_local
            make_router_state_thread_local()
        from local_runner.apigw import HttpRequest, build_event
        from local_runner.auth import Authorization
        mixups = []
        def serve(merchant):
            app = APIGatewayHttpResolver()
            @app.get("/who")
            def who():
                first = app.current_event.request_context.authorizer.jwt_claim["merchant_id"]
                time.sleep(0.02)
                return {"first": first, "second": app.current_event.request_context.authorizer.jwt_claim["merchant_id"]}
            for _ in range(5):
                event = build_event(HttpRequest("GET", "/who", "", [], b"", "127.0.0.1"), route_key="GET /who",
                                    path_parameters={}, authorization=Authorization({"merchant_id": merchant}, None))
                body = json.loads(app.resolve(event, None)["body"])
                if body != {"first": merchant, "second": merchant}:
                    mixups.append(body)
        threads = [threading.Thread(target=serve, args=(f"m{i}",)) for i in range(6)]
        [t.start() for t in threads]; [t.join() for t in threads]
        print(len(mixups))
    """)
    env = {**os.environ, "PYTHONPATH": f"{REPO_ROOT / 'layers' / 'shared'}:{REPO_ROOT}"}
    isolated = subprocess.run([sys.executable, "-c", script, "isolated"], capture_output=True, text=True, env=env,
                              timeout=60, check=True)
    stock = subprocess.run([sys.executable, "-c", script, "stock"], capture_output=True, text=True, env=env,
                           timeout=60, check=True)
    assert isolated.stdout.strip() == "0", isolated.stderr
    assert int(stock.stdout.strip()) > 0, "stock powertools no longer shares request state: isolation may go"


def test_the_e2e_failure_detector_sees_handler_errors() -> None:
    from tests.support.runner_process import HANDLER_FAILURE

    log = ("2026 ERROR local_runner.lambdas: genjobs-generation: asynchronous invocation failed (attempt 1 of 3)\n"
           "2026 ERROR local_runner.http: approval raised while serving POST /x:\n"
           "2026 INFO local_runner.access: 127.0.0.1 \"GET /health\" 200 131 3.7ms progress\n")
    assert len(HANDLER_FAILURE.findall(log)) == 2
