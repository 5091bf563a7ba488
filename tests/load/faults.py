"""Faults injected into `make load` (issue 12): the database's backends are all terminated several times (a
failover, `pg_terminate_backend`), then the server stops for ~10 s and comes back.

The runner gets its database from a dedicated embedded server (tests/support/postgres.py,
EmbeddedServerControl) through DATABASE_URL, so this driver can stop and start it under the running service.
Each fault is timed as a fraction of the run; what happened is printed with the report.
"""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass, field

import psycopg

from tests.support.postgres import EmbeddedServerControl

# (fraction of the run, what): terminate every backend three times, then one outage
SCHEDULE: tuple[tuple[float, str], ...] = ((0.15, "terminate"), (0.3, "terminate"), (0.45, "terminate"),
                                           (0.55, "stop"))


@dataclass
class FaultLog:
    terminated: list[int] = field(default_factory=list)  # backends killed per termination
    outages: list[float] = field(default_factory=list)  # seconds the server was down
    errors: list[str] = field(default_factory=list)


class FaultInjector(threading.Thread):
    def __init__(self, control: EmbeddedServerControl, dbname: str, seconds: float, *, outage_seconds: float = 10.0
                 ) -> None:
        super().__init__(name="fault-injector", daemon=True)
        self.control, self.dbname, self.seconds, self.outage_seconds = control, dbname, seconds, outage_seconds
        self.log = FaultLog()
        self._halt = threading.Event()

    def halt(self) -> None:
        self._halt.set()

    def run(self) -> None:
        started = time.monotonic()
        for fraction, kind in SCHEDULE:
            if self._halt.wait(max(0.0, started + fraction * self.seconds - time.monotonic())):
                return
            try:
                if kind == "terminate":
                    self._terminate_all()
                else:
                    self._outage()
            except Exception as exc:  # reported: a fault that was not injected makes the run prove less
                self.log.errors.append(f"{kind}: {type(exc).__name__}: {exc}")

    def _terminate_all(self) -> None:
        with psycopg.connect(self.control.url, autocommit=True) as admin:
            row = admin.execute("SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity "
                                "WHERE datname = %s AND pid <> pg_backend_pid()", (self.dbname,)).fetchone()
        self.log.terminated.append(int(row[0]) if row else 0)
        print(f"load: fault: terminated {self.log.terminated[-1]} backend(s)", flush=True)

    def _outage(self) -> None:
        down = time.monotonic()
        self.control.stop()
        print(f"load: fault: database stopped for {self.outage_seconds:.0f} s", flush=True)
        self._halt.wait(self.outage_seconds)
        self.control.start()
        self.log.outages.append(time.monotonic() - down)
        print(f"load: fault: database back after {self.log.outages[-1]:.1f} s", flush=True)
