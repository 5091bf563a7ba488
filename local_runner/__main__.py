"""`python -m local_runner [serve | migrate | token MERCHANT [--hours H] | openapi [--check] [--output PATH]]`.

serve    (default) the HTTP API on 127.0.0.1:$PORT over the embedded PostgreSQL (`make run`)
migrate  apply sql/ migrations to DATABASE_URL or the embedded server (`make migrate`)
token    print a bearer token for a merchant (`make token MERCHANT=acme`; operators:
         `make token MERCHANT=ops SCOPE=genjobs/admin`)
openapi  write the merged OpenAPI document (`make openapi`), or with --check fail when it is stale
"""

from __future__ import annotations

import argparse
import logging
import os
import signal
import sys
import threading
import time
import warnings
from pathlib import Path
from types import FrameType

STOP_GRACE_SECONDS = 4.0


def _setup_logging() -> None:
    from local_runner.settings import local_settings

    level = local_settings().log_level.upper()
    logging.basicConfig(level=level, format="%(asctime)s %(levelname)-7s %(name)s: %(message)s", stream=sys.stderr)
    logging.getLogger("pgserver").setLevel(logging.WARNING)


def _migrate() -> int:
    from genjobs.db import Database, DatabaseSettings
    from genjobs.db.migrations import migrate

    from local_runner.embedded import database_url_or_embedded

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


def _token(args: argparse.Namespace) -> int:
    from pydantic import ValidationError

    from local_runner.auth import issue_token
    from local_runner.settings import local_settings

    try:
        settings = local_settings()
    except ValidationError as exc:
        print(exc, file=sys.stderr)
        return 2
    merchant = args.merchant.strip()
    if not merchant or len(merchant) > 200:
        print("MERCHANT must be 1-200 characters", file=sys.stderr)
        return 2
    scope = " ".join(args.scope.split())
    print(issue_token(merchant, secret=settings.jwt_secret, merchant_claim=settings.merchant_claim, hours=args.hours,
                      extra_claims={"scope": scope} if scope else None))
    return 0


def _openapi(args: argparse.Namespace) -> int:
    from local_runner.openapi import DOCUMENT_PATH, build_document, function_descriptions, load_modules, render
    from local_runner.template import load_template, read_functions

    template = load_template()
    specs = read_functions(template)
    document, notes = build_document(specs, load_modules(specs), descriptions=function_descriptions(template, specs))
    for note in notes:
        print(f"note: {note}", file=sys.stderr)
    text = render(document)
    output = Path(args.output) if args.output else DOCUMENT_PATH
    if args.check:
        current = output.read_text(encoding="utf-8") if output.exists() else ""
        if current != text:
            print(f"{output} is stale: run `make openapi`", file=sys.stderr)
            return 1
        print(f"{output} is up to date")
        return 0
    output.parent.mkdir(parents=True, exist_ok=True)
    output.write_text(text, encoding="utf-8")
    print(f"wrote {output} ({len(document['paths'])} paths)")
    return 0


def _serve() -> int:
    from pydantic import ValidationError

    from local_runner.runner import Runner
    from local_runner.settings import local_settings

    stop = threading.Event()

    def on_signal(signum: int, frame: FrameType | None) -> None:
        stop.set()

    signal.signal(signal.SIGINT, on_signal)
    signal.signal(signal.SIGTERM, on_signal)
    started = time.perf_counter()
    try:
        settings = local_settings()
    except ValidationError as exc:
        print(exc, file=sys.stderr)
        return 2
    runner = Runner(settings)
    try:
        runner.start()
    except SystemExit:
        raise
    except BaseException:
        if stop.is_set():  # Ctrl-C during start-up: runner.start() already cleaned up
            return 130
        raise
    print(runner.banner(), flush=True)
    logging.getLogger("local_runner").info("ready in %.1f s", time.perf_counter() - started)
    while not stop.wait(0.5):
        pass
    print("\nstopping...", file=sys.stderr, flush=True)
    watchdog = threading.Timer(STOP_GRACE_SECONDS, _force_exit)
    watchdog.daemon = True
    watchdog.start()
    runner.stop()
    watchdog.cancel()
    print("stopped", file=sys.stderr, flush=True)
    return 0


def _force_exit() -> None:
    """Shutdown took too long (a handler stuck in a long call): leave anyway, the database is stopped first."""
    print("shutdown is taking too long; exiting now", file=sys.stderr, flush=True)
    os._exit(1)


def main(argv: list[str]) -> int:
    warnings.filterwarnings("ignore", message=".*XDG_RUNTIME_DIR.*")  # pgserver's lock dir, harmless
    parser = argparse.ArgumentParser(prog="python -m local_runner", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    commands = parser.add_subparsers(dest="command")
    commands.add_parser("serve", help="serve the HTTP API (default)")
    commands.add_parser("migrate", help="apply migrations")
    token = commands.add_parser("token", help="print a bearer token")
    token.add_argument("merchant", nargs="?", default="acme")
    token.add_argument("--hours", type=float, default=12.0)
    token.add_argument("--scope", default="", help="OAuth scopes, space-separated (e.g. genjobs/admin)")
    openapi = commands.add_parser("openapi", help="write docs/openapi.json")
    openapi.add_argument("--check", action="store_true", help="exit 1 when the file differs")
    openapi.add_argument("--output", help="path (default docs/openapi.json)")
    args = parser.parse_args(argv)
    command = args.command or "serve"
    if command == "token":
        return _token(args)
    _setup_logging()
    if command == "migrate":
        return _migrate()
    if command == "openapi":
        return _openapi(args)
    code = _serve()
    _exit_now_if_threads_linger(code)
    return code


def _exit_now_if_threads_linger(code: int) -> None:
    """Worker threads still inside a handler would keep the interpreter alive at exit; everything that
    matters is stopped by now, so leave without waiting for them."""
    lingering = [t for t in threading.enumerate() if t is not threading.main_thread() and not t.daemon and t.is_alive()]
    if lingering:
        sys.stdout.flush()
        sys.stderr.flush()
        os._exit(code)


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
