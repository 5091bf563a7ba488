"""Opaque keyset cursors for every newest-first list (jobs, personas, the ledger, the audit trail).

A cursor is base64url of a small JSON document — the last row's sort time and key, and a fingerprint of the
filters it belongs to — plus an HMAC-SHA256 tag over its owner and that document, keyed with a secret from
configuration (`CursorKeys`: the first key signs, the previous one still verifies after a rotation). So a
cursor cannot be forged or edited, and it is bound to its owner (the merchant, or `operator` for the
operator's lists) and to its filters: another merchant's cursor, or one used with other filters, is a 400.
Anything that does not decode, verify and parse is a 400, never a 500.
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
from genjobs.ports import CursorKeys

_TAG_BYTES = 12
MAX_CURSOR_LENGTH = 512
OPERATOR = "operator"  # the owner of the operator's lists (no merchant is named "operator\x00...")


def _fingerprint(filters: Mapping[str, Any]) -> str:
    canonical = json.dumps({k: str(v) for k, v in sorted(filters.items()) if v is not None}, separators=(",", ":"))
    return hashlib.sha256(canonical.encode()).hexdigest()[:16]


def _tag(key: bytes, owner: str, payload: bytes) -> bytes:
    # the owner is MACed, not carried: a cursor does not reveal it, and it verifies only for its owner
    message = owner.encode("utf-8", "surrogatepass") + b"\x00" + payload
    return hmac.new(key, message, hashlib.sha256).digest()[:_TAG_BYTES]


def encode_cursor(keys: CursorKeys, owner: str, sorted_at: datetime, key: str, filters: Mapping[str, Any]) -> str:
    payload = json.dumps({"t": sorted_at.isoformat(), "i": key, "f": _fingerprint(filters)},
                         separators=(",", ":")).encode()
    return base64.urlsafe_b64encode(payload + _tag(keys.signing, owner, payload)).rstrip(b"=").decode("ascii")


def decode_cursor(keys: CursorKeys, owner: str, cursor: str, filters: Mapping[str, Any]) -> tuple[datetime, str]:
    """(sort time, key) of the row the previous page ended with."""
    invalid = BadRequest("The cursor is not valid; start again without it.", details={"parameter": "cursor"})
    if not cursor or len(cursor) > MAX_CURSOR_LENGTH:
        raise invalid
    try:
        raw = base64.b64decode(cursor + "=" * (-len(cursor) % 4), altchars=b"-_", validate=True)
    except (binascii.Error, ValueError) as exc:
        raise invalid from exc
    payload, tag = raw[:-_TAG_BYTES], raw[-_TAG_BYTES:]
    # every key is tried (no early exit on the first match), so the time taken does not say which one fit
    matches = [hmac.compare_digest(tag, _tag(k, owner, payload)) for k in keys.keys]
    if len(raw) <= _TAG_BYTES or not any(matches):
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
