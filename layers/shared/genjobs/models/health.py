from __future__ import annotations

from pydantic import BaseModel


class HealthReport(BaseModel):
    status: str
    database: str
    server_version: str | None = None
    round_trip_ms: float | None = None
    applied_migrations: int = 0
    pending_migrations: list[str] = []
