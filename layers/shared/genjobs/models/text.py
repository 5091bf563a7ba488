"""The text types every input goes through, HTTP body, direct-invoke payload or identity claim alike.

PostgreSQL text and jsonb cannot hold NUL characters, and JSON may carry lone surrogates that are not
Unicode text at all: both are refused as invalid input (a 422 or VALIDATION_ERROR), never left to fail in
the database (a 500).
"""

from __future__ import annotations

import re
from typing import Annotated

from pydantic import AfterValidator, Field

STATE_NAME = re.compile(r"^[a-z][a-z0-9_]{0,39}$")


def storable_text(value: str) -> str:
    if "\x00" in value:
        raise ValueError("must not contain NUL characters")
    try:
        value.encode("utf-8")
    except UnicodeEncodeError as exc:
        raise ValueError("must be valid Unicode text (no lone surrogates)") from exc
    return value


Text = Annotated[str, AfterValidator(storable_text)]
MerchantId = Annotated[Text, Field(min_length=1, max_length=200)]
StateName = Annotated[str, Field(pattern=STATE_NAME.pattern)]
