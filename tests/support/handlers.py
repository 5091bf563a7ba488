"""The HTTP functions' handler modules, by function name (the names template.yaml and the tests use)."""

from __future__ import annotations

from types import ModuleType

import functions.admin.app as admin_app
import functions.approval.app as approval_app
import functions.generation.app as generation_app
import functions.limits.app as limits_app
import functions.progress.app as progress_app
import functions.webhooks.app as webhooks_app

HANDLERS: dict[str, ModuleType] = {
    "generation": generation_app,
    "limits": limits_app,
    "progress": progress_app,
    "approval": approval_app,
    "admin": admin_app,
    "webhooks": webhooks_app,
}
