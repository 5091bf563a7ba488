"""A person at the web console (tests/e2e/console): a browser page, the runner, and their merchant."""

from __future__ import annotations

import os
import uuid
from dataclasses import dataclass
from pathlib import Path

from playwright._impl._api_structures import Clip  # the TypedDict Page.screenshot takes
from playwright.sync_api import Page, expect

from tests.support.runner_process import Merchant, RunnerProcess, token_for

VIEWPORT = {"width": 1100, "height": 800}


@dataclass
class ConsoleUser:
    """A person at the console: a browser page, the runner, and the merchant whose token they paste."""

    page: Page
    runner: RunnerProcess
    merchant: Merchant

    @property
    def url(self) -> str:
        return f"{self.runner.base_url}/console/"

    def open(self, hash_path: str = "") -> None:
        self.page.goto(self.url + hash_path)

    def sign_in(self, token: str | None = None) -> None:
        self.open("#/signin")
        self.page.get_by_label("Bearer token").fill(token or self.merchant.token)
        self.page.get_by_role("button", name="Sign in").click()
        expect(self.page.locator("#merchant")).to_have_text(f"merchant {self.merchant.id}")

    def screenshot(self, name: str, *, full_page: bool = False, height: int | None = None) -> None:
        directory = os.environ.get("CONSOLE_SCREENSHOT_DIR")
        if not directory:
            return
        Path(directory).mkdir(parents=True, exist_ok=True)
        clip: Clip | None = {"x": 0, "y": 0, "width": VIEWPORT["width"], "height": height} if height else None
        self.page.screenshot(path=str(Path(directory) / f"{name}.png"), full_page=full_page or bool(height), clip=clip)


def new_merchant(runner: RunnerProcess, prefix: str = "console") -> Merchant:
    merchant_id = f"{prefix}-{uuid.uuid4().hex[:10]}"
    return Merchant(merchant_id, token_for(merchant_id), runner.base_url)
