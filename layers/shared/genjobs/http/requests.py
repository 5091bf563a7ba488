"""What every HTTP request must be before a resolver sees it: a JSON body, when it has one.

The API takes JSON bodies only. Powertools would also parse form and multipart bodies (and raise a bare
ValueError for a multipart header without a boundary: a 500), and decode a base64 body that is not UTF-8
with an UnicodeDecodeError (a 500). Checking the event first keeps those requests away from it, through
no private API: any content type but JSON is 415, a body that is not UTF-8 is 400.
"""

from __future__ import annotations

import base64
import binascii
from collections.abc import Mapping
from typing import Any

from genjobs.errors import BadRequest, GenjobsError


class UnsupportedMediaType(GenjobsError):
    code = "UNSUPPORTED_MEDIA_TYPE"


def _header(event: Mapping[str, Any], name: str) -> str:
    headers = event.get("headers") or {}
    return str(headers.get(name) or "").strip() if isinstance(headers, Mapping) else ""


def refuse_body(event: Mapping[str, Any]) -> GenjobsError | None:
    """The error for a request whose body the API cannot take, or None."""
    body = event.get("body")
    if not body:
        return None
    content_type = _header(event, "content-type")
    if content_type and not content_type.lower().startswith("application/json"):
        return UnsupportedMediaType("The request body must be JSON (Content-Type: application/json).",
                                    details={"content_type": content_type[:200]})
    if event.get("isBase64Encoded"):
        try:
            base64.b64decode(str(body), validate=True).decode("utf-8")
        except (binascii.Error, ValueError):
            return BadRequest("The request body is not valid JSON (it is not UTF-8 text).")
    return None
