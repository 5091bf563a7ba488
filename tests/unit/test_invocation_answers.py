"""Direct-invoke answers must survive the Lambda runtime's plain `json.dumps`."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any
from uuid import UUID

from genjobs.entry import Function
from genjobs.services.worker import RunOutcome
from pydantic import BaseModel, TypeAdapter


class Ping(BaseModel):
    action: str


def test_dataclass_answers_are_json_serializable() -> None:
    # Given a handler whose result is a dataclass with a UUID, next to other non-JSON types
    job_id = UUID(int=42)

    def dispatch(_: Ping) -> Any:
        return {"outcome": RunOutcome(job_id=job_id, claimed=True, status="generating_videos", attempt=1),
                "at": datetime(2026, 11, 26, tzinfo=UTC), "cost": Decimal("1.44")}

    # When it answers a direct invoke
    answer = Function("test", actions=TypeAdapter(Ping), dispatch=dispatch).invoke_direct({"action": "run_job"})

    # Then the answer is plain JSON
    decoded = json.loads(json.dumps(answer))
    assert decoded["ok"] is True
    assert decoded["result"]["outcome"]["job_id"] == str(job_id)
    assert decoded["result"]["outcome"]["status"] == "generating_videos"
    assert decoded["result"] == {**decoded["result"], "at": "2026-11-26T00:00:00+00:00", "cost": 1.44}


class Boom(Exception):
    """An infrastructure failure a function declares as propagating."""


def test_declared_errors_propagate_from_their_action_and_only_from_it(caplog: Any) -> None:
    # Given a function whose run_job lets Boom out, and whose other actions do not
    from genjobs.errors import DatabaseUnavailable

    def dispatch(action: Ping) -> Any:
        raise DatabaseUnavailable("The database connection was lost; retry shortly.")

    function = Function("test", actions=TypeAdapter(Ping), dispatch=dispatch,
                        propagate={"run_job": (DatabaseUnavailable,)})

    # When run_job fails for an infrastructure reason, Then the error leaves the handler (Lambda retries an
    # async invoke that raised, and sends it to the DLQ after its retries) and is logged with the action
    try:
        function.invoke_direct({"action": "run_job"})
    except DatabaseUnavailable:
        pass
    else:
        raise AssertionError("run_job's DatabaseUnavailable was swallowed")
    assert "direct invocation run_job failed; raising so Lambda retries it" in caplog.text

    # And another action still answers ok:false with the error's code
    answer = function.invoke_direct({"action": "get_job_progress"})
    assert answer["ok"] is False and answer["error"]["code"] == "SERVICE_UNAVAILABLE"
