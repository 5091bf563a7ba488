"""`python -m local_runner [serve|migrate|token MERCHANT]`."""

from __future__ import annotations

import signal
import sys
import threading

from genjobs.db import Database, DatabaseSettings
from genjobs.db.migrations import migrate

from local_runner.embedded import database_url_or_embedded


def _migrate() -> int:
    url, embedded = database_url_or_embedded()
    db = Database(DatabaseSettings(url=url, pool_min_size=0))
    try:
        applied = migrate(db)
        print(f"applied {len(applied)} migration(s): {', '.join(m.filename for m in applied) or 'none pending'}")
    finally:
        db.close()
        if embedded:
            embedded.stop()
    return 0


def _serve() -> int:
    url, embedded = database_url_or_embedded()
    db = Database(DatabaseSettings(url=url, pool_min_size=0))
    try:
        applied = migrate(db)
        print(f"database ready ({len(applied)} migration(s) applied): {url}")
        stop = threading.Event()
        signal.signal(signal.SIGINT, lambda *_: stop.set())
        signal.signal(signal.SIGTERM, lambda *_: stop.set())
        print("press Ctrl-C to stop")
        stop.wait()
    finally:
        db.close()
        if embedded:
            embedded.stop()
    return 0


def main(argv: list[str]) -> int:
    command = argv[0] if argv else "serve"
    if command == "migrate":
        return _migrate()
    if command == "serve":
        return _serve()
    print(f"unknown command {command!r}; use serve, migrate or token MERCHANT", file=sys.stderr)
    return 2


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
