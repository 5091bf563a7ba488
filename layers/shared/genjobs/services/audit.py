"""The operators' audit trail (admin_audit, written by each operator write's database function), newest first."""

from __future__ import annotations

from genjobs.data import admin as admin_data
from genjobs.db import Database
from genjobs.errors import BadRequest, ValidationFailed
from genjobs.models.admin import AuditPage
from genjobs.models.jobs import DEFAULT_PAGE_SIZE, MAX_PAGE_SIZE
from genjobs.ports import CursorKeys
from genjobs.services import cursors


def list_audit(db: Database, *, limit: int = DEFAULT_PAGE_SIZE, cursor: str | None = None,
               cursor_keys: CursorKeys) -> AuditPage:
    if not 1 <= limit <= MAX_PAGE_SIZE:
        raise ValidationFailed(f"limit must be between 1 and {MAX_PAGE_SIZE}.")
    scope = {"list": "admin_audit"}
    before_id = None
    if cursor is not None:
        _, key = cursors.decode_cursor(cursor_keys, cursors.OPERATOR, cursor, scope)
        if not key.isdigit() or len(key) > 19:
            raise BadRequest("The cursor is not valid; start again without it.", details={"parameter": "cursor"})
        before_id = int(key)
    rows = admin_data.list_audit(db, before_id=before_id, limit=limit + 1)
    page = rows[:limit]
    next_cursor = (cursors.encode_cursor(cursor_keys, cursors.OPERATOR, page[-1].created_at, str(page[-1].id), scope)
                   if len(rows) > limit else None)
    return AuditPage(items=page, next_cursor=next_cursor)
