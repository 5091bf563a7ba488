"""What every HTTP request must be before a resolver sees it: a JSON body, when it has one, within bounds.

The API takes JSON bodies only, of at most MAX_BODY_BYTES, nested at most MAX_DEPTH deep, with numbers of at
most MAX_NUMBER_CHARS characters: a hostile body (`[` x 1000, a 5,000-digit number) would otherwise raise
RecursionError or ValueError (Python's integer-string limit) inside the JSON parser — a 500. Bounded here, it
is a 400 BAD_REQUEST. The API's own bodies are a few hundred bytes, two levels deep.

Powertools would also parse form and multipart bodies (and raise a bare ValueError for a multipart header
without a boundary: a 500), and decode a base64 body that is not UTF-8 with an UnicodeDecodeError (a 500).
Checking the event first keeps those requests away from it, through no private API: any content type but
JSON is 415, a body that is not UTF-8 is 400.
"""

from __future__ import annotations

import base64
import binascii
from collections.abc import Mapping
from typing import Any

from genjobs.errors import BadRequest, GenjobsError

MAX_BODY_BYTES = 64 * 1024
MAX_DEPTH = 32
MAX_NUMBER_CHARS = 64


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
    text = str(body)
    if event.get("isBase64Encoded"):
        try:
            text = base64.b64decode(text, validate=True).decode("utf-8")
        except (binascii.Error, ValueError):
            return BadRequest("The request body is not valid JSON (it is not UTF-8 text).")
    if len(text.encode("utf-8", "surrogatepass")) > MAX_BODY_BYTES:
        return BadRequest(f"The request body is larger than {MAX_BODY_BYTES} bytes.",
                          details={"limit_bytes": MAX_BODY_BYTES})
    return _beyond_bounds(text)


def _beyond_bounds(text: str) -> GenjobsError | None:
    """Nesting deeper than MAX_DEPTH, or a number longer than MAX_NUMBER_CHARS, outside strings (one pass)."""
    depth = number = 0
    in_string = escaped = False
    for char in text:
        if in_string:
            if escaped:
                escaped = False
            elif char == "\\":
                escaped = True
            elif char == '"':
                in_string = False
            continue
        if char in "0123456789+-.eE":
            number += 1
            if number > MAX_NUMBER_CHARS:
                return BadRequest(f"A number in the request body is longer than {MAX_NUMBER_CHARS} characters.",
                                  details={"limit_chars": MAX_NUMBER_CHARS})
            continue
        number = 0
        if char == '"':
            in_string = True
        elif char in "[{":
            depth += 1
            if depth > MAX_DEPTH:
                return BadRequest(f"The request body is nested deeper than {MAX_DEPTH} levels.",
                                  details={"limit_depth": MAX_DEPTH})
        elif char in "]}":
            depth -= 1
    return None
