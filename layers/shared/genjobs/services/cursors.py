"""Opaque keyset cursors for every newest-first list (jobs, personas, the ledger, the audit trail).

A cursor is base64url of a small JSON document — the last row's sort time and key, and a fingerprint of
the filters it belongs to — plus an HMAC tag that detects edits. It is an integrity check, not a secret: a
cursor only ever positions a list within what the caller may already read. Anything that does not decode,
verify and parse is a 400, never a 500; a cursor of a list with other filters is a 400 too.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import json
from collections.abc import Mapping
from datetime import datetime
from typing import Any

from genjobs.errors import BadRequest

_CURSOR_KEY = b"genjobs-job-list-cursor-v1"  # unchanged since the job list's first cursors: they stay valid
_TAG_BYTES = 12
MAX_CURSOR_LENGTH = 512


def _fingerprint(filters: Mapping[str, Any]) -> str:
    canonical = json.dumps({k: str(v) for k, v in sorted(filters.items()) if v is not None}, separators=(",", ":"))
    return hashlib.sha256(canonical.encode()).hexdigest()[:16]


def _tag(payload: bytes) -> bytes:
    return hmac.new(_CURSOR_KEY, payload, hashlib.sha256).digest()[:_TAG_BYTES]


def encode_cursor(sorted_at: datetime, key: str, filters: Mapping[str, Any]) -> str:
    payload = json.dumps({"t": sorted_at.isoformat(), "i": key, "f": _fingerprint(filters)},
                         separators=(",", ":")).encode()
    return base64.urlsafe_b64encode(payload + _tag(payload)).rstrip(b"=").decode("ascii")


def decode_cursor(cursor: str, filters: Mapping[str, Any]) -> tuple[datetime, str]:
    """(sort time, key) of the row the previous page ended with."""
    invalid = BadRequest("The cursor is not valid; start again without it.", details={"parameter": "cursor"})
    if not cursor or len(cursor) > MAX_CURSOR_LENGTH:
        raise invalid
    try:
        raw = base64.b64decode(cursor + "=" * (-len(cursor) % 4), altchars=b"-_", validate=True)
    except (binascii.Error, ValueError) as exc:
        raise invalid from exc
    payload, tag = raw[:-_TAG_BYTES], raw[-_TAG_BYTES:]
    if len(raw) <= _TAG_BYTES or not hmac.compare_digest(tag, _tag(payload)):
        raise invalid
    try:
        document = json.loads(payload)
        sorted_at = datetime.fromisoformat(document["t"])
        key = document["i"]
        fingerprint = document["f"]
    except (ValueError, KeyError, TypeError) as exc:
        raise invalid from exc
    if sorted_at.tzinfo is None or not isinstance(key, str):
        raise invalid
    if fingerprint != _fingerprint(filters):
        raise BadRequest("The cursor belongs to a list with other filters; start again without it.",
                         details={"parameter": "cursor"})
    return sorted_at, key
