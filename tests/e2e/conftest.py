"""End-to-end tests: the local runner started as a subprocess (the way `make run` starts it) on a free port,
with a temporary data directory, driven over real HTTP.

One runner serves the whole session (start-up costs a couple of seconds); tests that stop or kill a runner
start their own. Each merchant-facing test uses its own merchant, so limits and data never collide.

Two checks run after every test against the shared runner, because its handlers run in another process
where the in-process guards of tests/support cannot see them:
* no statement the handlers sent would pin an RDS Proxy session (the runner logs every statement to
  LOCAL_STATEMENT_LOG; tests/support/pinning.py judges them);
* no handler raised: an exception in a function (HTTP 500, or an asynchronous invocation that Lambda
  would retry and then send to the DLQ) fails the test that caused it, even when the HTTP flow looked fine.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator

import pytest

from tests.support.pinning import is_exempt, pinning_reasons
from tests.support.runner_process import HANDLER_FAILURE, Merchant, RunnerProcess, token_for

SHARED_RUNNER_ENV = {
    "LOCAL_MEDIA_DELAY_MS": "100",
    "MAINTENANCE_INTERVAL_SECONDS": "2",
    "LOCAL_RUNNER_LOG_LEVEL": "INFO",
}


@pytest.fixture(scope="session")
def runner(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunnerProcess]:
    base = tmp_path_factory.mktemp("e2e-runner")
    process = RunnerProcess(base / "local", env=SHARED_RUNNER_ENV, name="shared-runner")
    try:
        process.start()
    except BaseException:
        process.stop()
        raise
    process.new_log()
    process.new_statements()
    yield process
    process.stop()


@pytest.fixture
def merchant(runner: RunnerProcess) -> Merchant:
    merchant_id = f"e2e-{uuid.uuid4().hex[:10]}"
    return Merchant(merchant_id, token_for(merchant_id), runner.base_url)


@pytest.fixture
def other_merchant(runner: RunnerProcess) -> Merchant:
    merchant_id = f"e2e-other-{uuid.uuid4().hex[:10]}"
    return Merchant(merchant_id, token_for(merchant_id), runner.base_url)


def _uses_shared_runner(item: pytest.Item) -> RunnerProcess | None:
    funcargs = getattr(item, "funcargs", {})
    value = funcargs.get("runner")
    return value if isinstance(value, RunnerProcess) else None


@pytest.hookimpl(wrapper=True)
def pytest_runtest_call(item: pytest.Item) -> Iterator[None]:
    result = yield  # a failing test keeps its own failure
    shared = _uses_shared_runner(item)
    if shared is not None:
        check_runner_health(shared, allow_session_state=item.get_closest_marker("allow_session_state") is not None)
    return result


def check_runner_health(process: RunnerProcess, *, allow_session_state: bool = False) -> None:
    failures = HANDLER_FAILURE.findall(process.new_log())
    statements = process.new_statements()
    problems: list[str] = []
    if failures:
        problems.append("the runner's functions failed during this test (see the runner log):\n  "
                        + "\n  ".join(failures[:10]))
    if not allow_session_state:
        pinning = [(s, pinning_reasons(s)) for s in statements if not is_exempt(s)]
        pinning = [(s, r) for s, r in pinning if r]
        if pinning:
            shown = "\n  ".join(f"{'; '.join(r)}: {' '.join(s.split())[:200]}" for s, r in pinning[:10])
            problems.append(f"{len(pinning)} statement(s) would pin an RDS Proxy session:\n  {shown}")
    if problems:
        pytest.fail("\n".join(problems) + f"\n{process.tail(40)}", pytrace=False)

