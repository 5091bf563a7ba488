"""Browser fixtures for the console: Playwright (pytest-playwright) driving Debian's Chromium against the shared
e2e runner, which serves the console at /console/ on the same origin as the API.

Playwright's own browser download is not reachable here, so the tests use the system Chromium
(`/usr/bin/chromium`, or `CONSOLE_CHROMIUM`); `.ci/run` installs Debian's `chromium` package when it is missing.
Screenshots of the main pages go to `CONSOLE_SCREENSHOT_DIR` when it is set (`make console-screenshots`
writes docs/console/); otherwise none are written.
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from playwright.sync_api import BrowserContext, Page, expect

from tests.support.console import VIEWPORT, ConsoleUser, new_merchant
from tests.support.runner_process import RunnerProcess

DEFAULT_CHROMIUM = "/usr/bin/chromium"
expect.set_options(timeout=15_000)  # a job's progress arrives within seconds; CI's 2 cores are shared


def chromium_path() -> str:
    path = os.environ.get("CONSOLE_CHROMIUM") or DEFAULT_CHROMIUM
    if not (Path(path).is_file() and os.access(path, os.X_OK)) and not shutil.which(path):
        pytest.fail(f"no Chromium at {path}: install Debian's package (apt-get install chromium; .ci/run does it) "
                    "or set CONSOLE_CHROMIUM", pytrace=False)
    return path


@pytest.fixture(scope="session")
def browser_type_launch_args(browser_type_launch_args: dict[str, Any]) -> dict[str, Any]:
    return {**browser_type_launch_args, "executable_path": chromium_path()}


@pytest.fixture(scope="session")
def browser_context_args(browser_context_args: dict[str, Any]) -> dict[str, Any]:
    return {**browser_context_args, "viewport": VIEWPORT, "locale": "en-US", "timezone_id": "UTC"}


@pytest.fixture
def user(page: Page, runner: RunnerProcess) -> Iterator[ConsoleUser]:
    errors: list[str] = []
    page.on("pageerror", lambda exc: errors.append(str(exc)))
    yield ConsoleUser(page, runner, new_merchant(runner))
    assert not errors, f"uncaught errors in the console: {errors}"


@pytest.fixture
def fresh_context(browser_context_args: dict[str, Any], browser: Any) -> Iterator[BrowserContext]:
    """A context of its own (empty cache and storage), for first-load measurements."""
    context = browser.new_context(**browser_context_args)
    yield context
    context.close()
