from __future__ import annotations

from time import perf_counter

from genjobs.data.health import read_server_info
from genjobs.db import Database
from genjobs.db.migrations import Migration
from genjobs.errors import DatabaseUnavailable
from genjobs.models.health import HealthReport


def check_health(db: Database, migrations: list[Migration]) -> HealthReport:
    """Database reachability, version, round-trip time and pending migrations.

    Raises DatabaseUnavailable when the database cannot be reached (the HTTP layer answers 503).
    """
    started = perf_counter()
    info = read_server_info(db)
    round_trip_ms = (perf_counter() - started) * 1000.0
    applied = set(info.applied_versions)
    pending = [m.filename for m in migrations if m.version not in applied]
    return HealthReport(
        status="ok" if not pending else "degraded",
        database="reachable",
        server_version=info.server_version,
        round_trip_ms=round(round_trip_ms, 3),
        applied_migrations=len(applied),
        pending_migrations=pending,
    )


__all__ = ["DatabaseUnavailable", "check_health"]
