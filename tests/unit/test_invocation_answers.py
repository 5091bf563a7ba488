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
