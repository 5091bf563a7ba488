"""The hostile-input corpus (issue 12, the standing suite): every route of the template and every direct-invoke
action of every function, through the local runner, with nesting, huge numbers, NUL, lone surrogates, oversized
headers and claims and SQL-looking strings. The assertion: no 5xx, ever (and no direct invoke that raised or
answered INTERNAL_ERROR). The runner's health hook (conftest) also fails the test if a handler raised.

`make test` sends the whole corpus (about 650 HTTP requests and 1,000 invocations); `make fuzz` runs it too."""

from __future__ import annotations

import json
import uuid
from collections import Counter
from typing import Any

import jwt
import pytest
from genjobs.models import actions
from pydantic import TypeAdapter

from local_runner.settings import local_settings
from local_runner.template import read_functions
from tests.support.runner_process import Merchant, RunnerProcess, request

ROUTES = [r for spec in read_functions() for r in spec.routes]

NESTED_LIST = "[" * 1000 + "]" * 1000
NESTED_OBJECT = '{"a":' * 200 + "1" + "}" * 200
HUGE_NUMBER = "9" * 5000
SQL = "'; DROP TABLE generation_jobs; --"

# JSON documents as raw text (some cannot be made by json.dumps: lone surrogates, 5,000-digit numbers)
RAW_BODIES: list[bytes] = [s.encode() for s in (
    NESTED_LIST, NESTED_OBJECT, HUGE_NUMBER, f'{{"name": {HUGE_NUMBER}}}', '{"name": 1e400}', '{"name": -0.0}',
    '{"name": "a\\u0000b"}', '{"name": "\\ud800"}', '{"name": "\\udfff\\ud800"}', f'{{"name": "{SQL}"}}',
    '{"name": null}', '{"name": true}', '{"name": []}', '{"name": {}}', '{"name": "' + "x" * 70_000 + '"}',
    '{"variation_count": 99999999999999999999}', '{"variation_count": "3"}', '{"states": ["idle\\u0000"]}',
    '{"states": [' + ",".join(['"s"'] * 5000) + ']}', '{"prompt_variables": {"\\u0000": "x"}}',
    '{"variation_id": "00000000-0000-0000-0000-000000000000\\u0000"}', '{"model": "' + SQL + '"}',
    '"just a string"', "[]", "null", "0", "{", "\xff\xfe",
)] + [b"\x00" * 64, b"\xc3\x28", b""]

# path parameters and query values
PATH_VALUES = [str(uuid.uuid4()), "not-a-uuid", "%00", "%ud800", "%ED%A0%80", "1%27%20OR%201%3D1", "x" * 2000]
QUERY_STRINGS = ["limit=100000000000000000000", "limit=-1", "wait=99999999", "wait=1e400", "status=%00",
                 "status=" + "x" * 3000, "cursor=" + "A" * 5000, "cursor=%ED%A0%80", "persona_id=%27%3B--",
                 "job_type=" + SQL.replace(" ", "%20").replace(";", "%3B").replace("'", "%27"), "days=1e9",
                 "after=99999999999999999999999", "created_after=9999-99-99", "a=1&" * 200]

HEADERS = [
    {"Idempotency-Key": "k" * 10_000},
    {"Idempotency-Key": "\x7f\x01"},
    {"If-None-Match": '"' + "9" * 5000 + '"'},
    {"Content-Type": "application/json; charset=utf-16"},
    {"Content-Type": "text/plain"},
    {"X-Filler": "y" * 16_000},
]


def _path(route_path: str, value: str) -> str:
    out = route_path
    while "{" in out:
        start, end = out.index("{"), out.index("}")
        out = out[:start] + value + out[end + 1:]
    return out


def _hostile_tokens() -> list[str]:
    secret = local_settings().jwt_secret
    exp = 4_000_000_000
    claims: list[Any] = ["a\x00b", "\ud800", " acme ", "x" * 20_000, SQL, "", None, True, ["a", "b"], {"id": "x"}, 7]
    tokens = []
    for value in claims:
        try:
            tokens.append(jwt.encode({"merchant_id": value, "exp": exp}, secret, algorithm="HS256"))
        except (UnicodeEncodeError, TypeError):
            # a lone surrogate cannot be UTF-8 encoded by PyJWT: send its escaped JSON form, signed by hand
            tokens.append(_signed_raw(f'{{"merchant_id": "\\ud800", "exp": {exp}}}', secret))
    tokens.append(jwt.encode({"merchant_id": "acme", "exp": exp, "pad": "p" * 60_000}, secret, algorithm="HS256"))
    return tokens


def _signed_raw(payload: str, secret: str) -> str:
    import base64
    import hashlib
    import hmac

    def part(data: bytes) -> str:
        return base64.urlsafe_b64encode(data).rstrip(b"=").decode()

    signing_input = part(b'{"alg":"HS256","typ":"JWT"}') + "." + part(payload.encode())
    signature = hmac.new(secret.encode(), signing_input.encode(), hashlib.sha256).digest()
    return signing_input + "." + part(signature)


def _no_5xx(replies: list[tuple[str, int]]) -> None:
    server_errors = [(what, status) for what, status in replies if status >= 500]
    assert not server_errors, f"{len(server_errors)} of {len(replies)} answered 5xx: {server_errors[:10]}"


def test_every_route_survives_the_hostile_corpus(runner: RunnerProcess, merchant: Merchant) -> None:
    # Given every route of the template, When each gets hostile bodies, path values, queries, headers and
    # tokens, Then none answers 5xx
    replies: list[tuple[str, int]] = []
    for route in ROUTES:
        path = _path(route.path, str(uuid.uuid4()))
        for raw in RAW_BODIES if route.method in ("POST", "PATCH", "PUT") else [b""]:
            reply = request(runner.base_url, route.method, path, token=merchant.token, raw_body=raw or None,
                            headers={"Content-Type": "application/json"})
            replies.append((f"{route.route_key} body {raw[:40]!r}", reply.status))
        for value in PATH_VALUES if "{" in route.path else []:
            reply = request(runner.base_url, route.method, _path(route.path, value), token=merchant.token,
                            raw_body=b"{}" if route.method == "POST" else None)
            replies.append((f"{route.route_key} path {value[:40]}", reply.status))
        for query in QUERY_STRINGS:
            reply = request(runner.base_url, route.method, f"{path}?{query}", token=merchant.token)
            replies.append((f"{route.route_key} ?{query[:40]}", reply.status))
        for headers in HEADERS:
            reply = request(runner.base_url, route.method, path, token=merchant.token, raw_body=b"{}",
                            headers={"Content-Type": "application/json", **headers})
            replies.append((f"{route.route_key} headers {list(headers)}", reply.status))
        for token in _hostile_tokens():
            reply = request(runner.base_url, route.method, path, token=token)
            replies.append((f"{route.route_key} token {token[:30]}", reply.status))
    _no_5xx(replies)
    assert len(replies) >= 40 * len(ROUTES), len(replies)
    statuses = Counter(status for _, status in replies)
    assert statuses[400] and statuses[401] and statuses[404], statuses  # the corpus did reach the checks


def _actions_by_function() -> dict[str, list[tuple[str, list[str]]]]:
    """Function name -> (action, the fields of its payload), from the layer's action models."""
    adapters: dict[str, TypeAdapter[Any]] = {
        "genjobs-generation": actions.WORKER_ACTIONS, "genjobs-progress": actions.PROGRESS_ACTIONS,
        "genjobs-limits": actions.LIMITS_ACTIONS, "genjobs-approval": actions.APPROVAL_ACTIONS,
        "genjobs-maintenance": actions.MAINTENANCE_ACTIONS, "genjobs-migrate": actions.MIGRATE_ACTIONS,
    }
    out: dict[str, list[tuple[str, list[str]]]] = {}
    for function, adapter in adapters.items():
        schema = adapter.json_schema()
        models = [schema, *schema.get("$defs", {}).values()]
        for model in models:
            action = (model.get("properties") or {}).get("action")
            if not action:
                continue
            names = action.get("enum") or [action.get("const")]
            fields = [f for f in model["properties"] if f != "action"]
            out.setdefault(function, []).extend((str(name), fields) for name in names if name)
    return out


HOSTILE_VALUES: list[Any] = [None, True, -1, 10**30, 1e308, "", "a\x00b", "\ud800", SQL, "x" * 100_000,
                             [[[[[]]]]], {"$ne": 1}, str(uuid.uuid4()), "00000000-0000-0000-0000-000000000000"]


UNDECODABLE = (NESTED_LIST.encode(), b'{"action": ' + HUGE_NUMBER.encode() + b"}")


def test_every_direct_invoke_action_survives_the_hostile_corpus(runner: RunnerProcess) -> None:
    # Given every direct-invoke action of every function (through Lambda's Invoke API on the runner)
    by_function = _actions_by_function()
    assert sum(len(a) for a in by_function.values()) >= 15, by_function
    answers: list[tuple[str, Any]] = []

    def invoke(function: str, raw: bytes) -> None:
        reply = request(runner.base_url, "POST", f"/2015-03-31/functions/{function}/invocations", raw_body=raw)
        what = f"{function} {raw[:80]!r}"
        assert reply.status == 200, (what, reply.status, reply.body)
        if reply.header("x-amz-function-error") is not None:
            # only the runtime's own refusal of JSON its decoder cannot take, before any handler runs
            assert raw in UNDECODABLE, (what, reply.body)
            assert reply.json["errorType"] == "Runtime.UnmarshalError", (what, reply.body)
            return
        answers.append((what, reply.json))

    for function, named in by_function.items():
        # When whole payloads are hostile
        for raw in (b"[]", b'"run_job"', b"0", b'{"action": null}', b'{"action": "\\ud800"}',
                    b'{"action": "' + SQL.encode() + b'"}', NESTED_LIST.encode(), b'{"action": ' + HUGE_NUMBER.encode()
                    + b"}"):
            invoke(function, raw)
        # And each field of each action gets each hostile value (the others left out or valid)
        for action, fields in named:
            # the sweeps' and migrations' payload is the action alone: they get hostile extras
            alone = action in ("sweep", "rescue", "redispatch", "poll_videos", "retention", "migrate", "pending")
            for field in [*fields, "extra"] if alone else fields:
                for value in HOSTILE_VALUES:
                    base = {"action": action, "job_id": str(uuid.uuid4()), "merchant_id": "hostile-corpus"}
                    document = json.dumps({**base, field: value}, ensure_ascii=True)
                    invoke(function, document.encode())

    # Then every answer is an answer: ok, or an error that says what was wrong, never INTERNAL_ERROR
    internal = [(what, a) for what, a in answers
                if not isinstance(a, dict) or (not a.get("ok") and a.get("error", {}).get("code") == "INTERNAL_ERROR")]
    assert not internal, internal[:5]
    assert len(answers) > 300, len(answers)


@pytest.mark.parametrize("name", ["genjobs-nope", "%00", "x" * 300])
def test_the_invoke_api_answers_unknown_functions_like_lambda(runner: RunnerProcess, name: str) -> None:
    reply = request(runner.base_url, "POST", f"/2015-03-31/functions/{name}/invocations", raw_body=b"{}")
    assert reply.status == 404 and reply.header("x-amzn-errortype") == "ResourceNotFoundException"
