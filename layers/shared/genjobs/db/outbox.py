"""The webhook outbox's signal to the writer: "this statement wrote webhook events".

The outbox triggers (sql/090) set the transaction-local setting `genjobs.webhooks_pending` when they write
messages; a writer reads it in the same statement (`pending_column`, no extra round trip) and notes it
here. The handler entry (`genjobs.entry`) takes the note after the event is handled (the statement has
committed by then) and asks the webhooks function for a prompt delivery. The note is per thread: the local
runner serves concurrent requests on threads of one process, Lambda one request per container.
"""

from __future__ import annotations

import threading
from typing import LiteralString

# Appended to a writer's SELECT list (after the call, so it is evaluated after it: PostgreSQL computes a
# select list's entries in order); 'on' when the statement wrote webhook events, else NULL or ''. The text
# itself is returned, not a comparison: the cheapest form (make bench PART=webhooks measured a FROM-clause
# call at +10 % of a write, this at +1 %).
PENDING_COLUMN: LiteralString = "current_setting('genjobs.webhooks_pending', true)"
PENDING_VALUE = "on"

_state = threading.local()


def note_webhooks_pending() -> None:
    _state.pending = True


def take_webhooks_pending() -> bool:
    """True once after a statement of this thread wrote webhook events; clears the note."""
    pending = bool(getattr(_state, "pending", False))
    _state.pending = False
    return pending
