"""`make run`: the whole service on one machine, no Docker, no AWS account.

Start-up, in order: the port is checked; the embedded PostgreSQL starts (or `DATABASE_URL` is used);
the environment the handlers read is set; migrations are applied; powertools' request state is made per
thread; the in-process invoker, the local media provider and store are installed with
`genjobs.dependencies.override`; one container of every function is imported; the HTTP server starts; the
scheduled functions get their timers. `stop()` undoes it all within a few seconds.
"""

from __future__ import annotations

import json
import logging
import os
import re
import secrets
import threading
import time
import uuid
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from local_runner.auth import JwtAuthorizer, issue_token
from local_runner.embedded import EmbeddedPostgres
from local_runner.media import LocalMediaProvider, LocalMediaStore, LocalModelCatalog
from local_runner.s3_events import s3_object_created_event
from local_runner.settings import LocalSettings
from local_runner.template import FunctionSpec, RouteTable, load_template, read_functions

logger = logging.getLogger("local_runner")

HOST = "127.0.0.1"


def local_webhook_key(local_dir: Path) -> str:
    """The key that encrypts webhook secrets locally: made once, kept in .local/webhook-secret-key (0600)."""
    path = local_dir / "webhook-secret-key"
    if not path.exists():
        local_dir.mkdir(parents=True, exist_ok=True)
        try:
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        except FileExistsError:
            pass  # another runner on this directory made it first
        else:
            with os.fdopen(fd, "w") as handle:
                handle.write(secrets.token_urlsafe(48))
    return path.read_text().strip()


def function_names(specs: list[FunctionSpec], *, worker_function: str) -> dict[str, str]:
    """Invoked name → code directory: `genjobs-<dir>` for each function, plus the name the code is
    configured to invoke the worker by (genjobs.settings: WORKER_FUNCTION_NAME)."""
    names = {f"genjobs-{s.name}": s.name for s in specs}
    worker_dir = "worker" if any(s.name == "worker" for s in specs) else "generation"
    names.setdefault(worker_function, worker_dir)
    return names


CURSOR_KEYS_FILE = "cursor-keys"


def local_cursor_keys(local_dir: Path) -> str:
    """The list cursors' keys of this machine (CURSOR_KEYS), generated once and kept in .local/cursor-keys:
    one key a line, the first signs and the others still verify. To rotate, put a new line first (and drop
    the old one once the cursors it signed no longer matter); the runner reads the file when it starts."""
    path = local_dir / CURSOR_KEYS_FILE
    if not path.exists():
        local_dir.mkdir(parents=True, exist_ok=True)
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)  # readable by this user only
        with os.fdopen(fd, "w") as file:
            file.write(secrets.token_urlsafe(48) + "\n")
    keys = [line.strip() for line in path.read_text().splitlines() if line.strip()]
    return ",".join(keys)


_RATE = re.compile(r"^rate\((\d+)\s+(minute|minutes|hour|hours|day|days)\)$")


def schedules(template: Mapping[str, Any], specs: list[FunctionSpec]) -> dict[str, float]:
    """Code directory → seconds between runs, for every function with a Schedule event (rate(...) only). A
    schedule with an `Input` (e.g. the daily model lifecycle check) sends a direct action, not the scheduled
    event the local timer emulates: it is left out (invoke the action directly to run it locally)."""
    by_logical = {s.logical_id: s for s in specs}
    out: dict[str, float] = {}
    for logical_id, resource in (template.get("Resources") or {}).items():
        spec = by_logical.get(logical_id)
        if spec is None:
            continue
        for event in ((resource.get("Properties") or {}).get("Events") or {}).values():
            if event.get("Type") != "Schedule" or "Input" in (event.get("Properties") or {}):
                continue
            expression = str((event.get("Properties") or {}).get("Schedule", ""))
            match = _RATE.match(expression.strip())
            if match:
                unit = match.group(2).rstrip("s")
                out[spec.name] = int(match.group(1)) * {"minute": 60, "hour": 3600, "day": 86400}[unit]
    return out


@dataclass(frozen=True)
class S3Subscription:
    function: str
    prefix: str
    suffix: str
    events: tuple[str, ...]

    def wants(self, key: str, event_name: str) -> bool:
        if not key.startswith(self.prefix) or not key.endswith(self.suffix):
            return False
        name = f"s3:{event_name}"
        return any(name == e or (e.endswith(":*") and name.startswith(e[:-1])) for e in self.events)


def _subscription(function: str, raw_events: Any, rules: list[Mapping[str, Any]]) -> S3Subscription:
    names = (raw_events,) if isinstance(raw_events, str) else tuple(str(e) for e in raw_events or [])
    prefix = next((str(r.get("Value", "")) for r in rules if str(r.get("Name")).lower() == "prefix"), "")
    suffix = next((str(r.get("Value", "")) for r in rules if str(r.get("Name")).lower() == "suffix"), "")
    return S3Subscription(function=function, prefix=prefix, suffix=suffix, events=names)


def s3_subscriptions(template: Mapping[str, Any], specs: list[FunctionSpec]) -> list[S3Subscription]:
    """The S3 notifications of template.yaml: a bucket's NotificationConfiguration.LambdaConfigurations (the
    function named by `!GetAtt <Function>.Arn`), and SAM's Events of Type S3, with their key filters."""
    by_logical = {s.logical_id: s for s in specs}
    subs: list[S3Subscription] = []
    for logical_id, resource in (template.get("Resources") or {}).items():
        props = resource.get("Properties") or {}
        for config in ((props.get("NotificationConfiguration") or {}).get("LambdaConfigurations") or []):
            target = (config.get("Function") or {}).get("Fn::GetAtt") if isinstance(config.get("Function"), dict) \
                else None
            spec = by_logical.get(str(target[0])) if isinstance(target, list) and target else None
            if spec is not None:
                rules = (((config.get("Filter") or {}).get("S3Key") or {}).get("Rules")) or []
                subs.append(_subscription(spec.name, config.get("Event"), rules))
        spec = by_logical.get(logical_id)
        if spec is None:
            continue
        for event in (props.get("Events") or {}).values():
            if event.get("Type") != "S3":
                continue
            event_props = event.get("Properties") or {}
            rules = (((event_props.get("Filter") or {}).get("S3Key") or {}).get("Rules")) or []
            subs.append(_subscription(spec.name, event_props.get("Events"), rules))
    return subs


def scheduled_event(rule_name: str, now: float | None = None) -> dict[str, Any]:
    """What EventBridge sends for a schedule rule."""
    moment = time.gmtime(now if now is not None else time.time())
    return {
        "version": "0",
        "id": str(uuid.uuid4()),
        "detail-type": "Scheduled Event",
        "source": "aws.events",
        "account": "123456789012",
        "time": time.strftime("%Y-%m-%dT%H:%M:%SZ", moment),
        "region": "us-east-1",
        "resources": [f"arn:aws:events:us-east-1:123456789012:rule/{rule_name}"],
        "detail": {},
    }


class StatementLog:
    """Every SQL statement the handlers send, one JSON line each (LOCAL_STATEMENT_LOG; the e2e tests check
    them for RDS Proxy session pinning)."""

    def __init__(self, path: Path) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        self._file = path.open("a", encoding="utf-8", buffering=1)
        self._lock = threading.Lock()

    def __call__(self, statement: str, elapsed_ms: float) -> None:
        line = json.dumps({"sql": statement, "ms": round(elapsed_ms, 3)})
        with self._lock:
            if not self._file.closed:
                self._file.write(line + "\n")

    def close(self) -> None:
        with self._lock:
            self._file.close()


class Runner:
    def __init__(self, settings: LocalSettings) -> None:
        self.settings = settings
        self.embedded: EmbeddedPostgres | None = None
        self.database_url = ""
        self.base_url = ""
        self.port = settings.port
        self._server: Any = None
        self._server_thread: threading.Thread | None = None
        self._timers: list[threading.Thread] = []
        self._stop_timers = threading.Event()
        self._invoker: Any = None
        self._statement_log: StatementLog | None = None
        self._stopped = False
        self.notes: list[str] = []
        self.token = ""

    # ------------------------------------------------------------------ start
    def start(self) -> None:
        from local_runner.server import port_is_free

        settings = self.settings
        if settings.port and not port_is_free(settings.host, settings.port):
            raise SystemExit(f"port {settings.port} on {settings.host} is in use (another `make run`?); "
                             "stop it or choose another with PORT=...")
        secret = settings.jwt_secret
        template = load_template()
        specs = read_functions(template)

        url = settings.database_url
        if not url:
            self.embedded = EmbeddedPostgres(settings.local_dir)
            url = self.embedded.start()
        self.database_url = url
        try:
            self._start_serving(url, secret, template, specs)
        except BaseException:
            self.stop()
            raise

    def _start_serving(self, url: str, secret: str, template: dict[str, Any], specs: list[FunctionSpec]) -> None:
        from local_runner.server import Gateway, make_server

        settings = self.settings
        # Bind first (PORT=0 picks a free port) so MEDIA_BASE_URL names the real one; requests wait in the
        # listen backlog until serve_forever starts below.
        self._server = server = make_server(settings.host, settings.port)
        self.port = server.server_address[1]
        self.base_url = f"http://{settings.host}:{self.port}"
        self._configure_environment(url)

        from genjobs import dependencies
        from genjobs.db.instrumentation import instrumentation
        from genjobs.db.migrations import migrate
        from genjobs.settings import reload_settings

        from local_runner.isolation import make_router_state_thread_local
        from local_runner.lambdas import InProcessInvoker, LocalLambdas
        from local_runner.openapi import build_document, function_descriptions

        if settings.statement_log is not None:
            self._statement_log = StatementLog(settings.statement_log)
            instrumentation.add(self._statement_log)

        dependencies.reset()
        config = reload_settings()
        applied = migrate(dependencies.get().db)
        logger.info("database ready: %d migration(s) applied", len(applied))

        make_router_state_thread_local()
        names = function_names(specs, worker_function=config.worker_function_name)
        lambdas = LocalLambdas(specs, names, max_containers=settings.max_containers)
        self._invoker = invoker = InProcessInvoker(lambdas, workers=settings.async_workers)
        subscriptions = s3_subscriptions(template, specs)
        store = _NotifyingMediaStore(settings.local_dir / "media", bucket=config.media_bucket,
                                     base_url=f"{self.base_url}/media", invoker=invoker,
                                     subscriptions=subscriptions, lambdas=lambdas)
        provider = LocalMediaProvider(store, on_object_created=None, delay_ms=settings.media_delay_ms)
        dependencies.override(invoker=invoker, provider=provider, store=store, catalog=LocalModelCatalog())

        broken: list[str] = []
        for spec in specs:
            try:
                lambdas.pool(spec.name).warm()
            except Exception:
                logger.exception("function %s failed to import; its routes will answer 500", spec.name)
                broken.append(spec.name)

        routes = RouteTable([r for s in specs for r in s.routes])
        descriptions = function_descriptions(template, specs)

        def openapi() -> dict[str, Any]:
            modules = {name: pool.warm().module for name, pool in lambdas.pools.items()
                       if name not in broken and pool.spec.routes}
            document, notes = build_document(specs, modules, descriptions=descriptions)
            for note in notes:
                logger.warning("openapi: %s", note)
            return document

        authorizer = JwtAuthorizer(secret, merchant_claim=settings.merchant_claim)
        gateway = Gateway(routes, lambdas, authorizer, media_root=settings.local_dir / "media", openapi=openapi)
        (settings.local_dir / "media").mkdir(parents=True, exist_ok=True)
        server.gateway = gateway
        self._server_thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.2},
                                               name="http-server", daemon=True)
        self._server_thread.start()

        self._start_timers(template, specs, lambdas, broken)
        self.token = issue_token(settings.token_merchant, secret=secret, merchant_claim=settings.merchant_claim,
                                 hours=settings.token_hours)

    def _configure_environment(self, url: str) -> None:
        """The environment the functions read (genjobs.settings), as the template gives it to them in AWS;
        the `defaults` yield to a value the developer set."""
        os.environ.update({"DATABASE_URL": url, "DB_AUTH": "url", "MEDIA_BASE_URL": f"{self.base_url}/media"})
        defaults = {
            "DB_POOL_MAX_SIZE": "8",  # threads share the one process-wide pool
            "DB_POOL_MIN_SIZE": "1",
            "MEDIA_BUCKET": "genjobs-media-local",
            "AWS_REGION": "us-east-1",
            "AWS_DEFAULT_REGION": "us-east-1",
            "AWS_EC2_METADATA_DISABLED": "true",  # an accidental AWS call fails fast, not after IMDS
            "POWERTOOLS_TRACE_DISABLED": "true",
            "POWERTOOLS_METRICS_DISABLED": "true",  # EMF lines on every invocation are noise here
            "POWERTOOLS_METRICS_NAMESPACE": "genjobs-local",
        }
        for name, value in defaults.items():
            os.environ.setdefault(name, value)
        os.environ.setdefault("CURSOR_KEYS", local_cursor_keys(self.settings.local_dir))
        # Webhooks: developers point endpoints at http://127.0.0.1:<port> (SSRF rules lifted here only), and
        # endpoint secrets are encrypted with a key generated once under .local/ (in AWS: Secrets Manager).
        os.environ.setdefault("WEBHOOK_ALLOW_PRIVATE_URLS", "true")
        os.environ.setdefault("WEBHOOK_SECRET_KEY", local_webhook_key(self.settings.local_dir))

    def _start_timers(self, template: dict[str, Any], specs: list[FunctionSpec], lambdas: Any,
                      broken: list[str]) -> None:
        for name, seconds in schedules(template, specs).items():
            if name in broken:
                logger.warning("%s failed to import: its schedule is not run", name)
                continue
            interval = self.settings.maintenance_interval_seconds or seconds
            pool = lambdas.pool(name)
            thread = threading.Thread(target=self._tick, args=(pool, interval), name=f"schedule-{name}",
                                      daemon=True)
            thread.start()
            self._timers.append(thread)
            self.notes.append(f"{name} every {interval:g} s")

    def _tick(self, pool: Any, interval: float) -> None:
        first = True
        while not self._stop_timers.wait(interval):
            try:
                result = pool.invoke(scheduled_event(f"genjobs-{pool.spec.name}-schedule"))
            except Exception:
                logger.exception("scheduled run of %s failed", pool.spec.name)
                continue
            counts = (result or {}).get("result") if isinstance(result, dict) else None
            if first or (isinstance(counts, dict) and any(counts.values())):
                logger.info("scheduled %s: %s", pool.spec.name, json.dumps(counts if counts is not None else result))
            first = False

    # ------------------------------------------------------------------ stop
    def stop(self) -> None:
        """Stop serving, the timers, the invoker, the pool and the embedded server; safe to call twice."""
        if self._stopped:
            return
        self._stopped = True
        self._stop_timers.set()
        if self._server is not None:
            if self._server_thread is not None:
                self._server.shutdown()
            self._server.server_close()
        if self._invoker is not None and not self._invoker.shutdown(timeout=2.0):
            logger.warning("stopping with %d asynchronous invocation(s) still running", self._invoker.pending())
        try:
            from genjobs import dependencies

            built = dependencies.reset()
            if built is not None:
                built.db.close()
        except Exception:
            logger.exception("closing the database pool failed")
        if self._statement_log is not None:
            from genjobs.db.instrumentation import instrumentation

            instrumentation.remove(self._statement_log)
            self._statement_log.close()
        if self.embedded is not None:
            self.embedded.stop()

    def banner(self) -> str:
        base = self.base_url
        database = (f"embedded PostgreSQL, data in {self.settings.local_dir / 'pgdata'}" if self.embedded
                    else "DATABASE_URL")
        lines = [
            "",
            "genjobs local runner",
            f"  API         {base}",
            f"  console     {base}/console/",
            f"  Swagger UI  {base}/docs",
            f"  OpenAPI     {base}/openapi.json",
            f"  database    {database}",
            f"  media       {self.settings.local_dir / 'media'} at {base}/media/",
        ]
        if self.notes:
            lines.append(f"  schedules   {', '.join(self.notes)}")
        lines += [
            "",
            f"A bearer token for merchant '{self.settings.token_merchant}' (valid {self.settings.token_hours:g} h;"
            " another: make token MERCHANT=name):",
            f"  export BASE={base}",
            f"  export TOKEN={self.token}",
            '  curl -s -H "Authorization: Bearer $TOKEN" "$BASE/usage"',
            "",
            "Ctrl-C stops the server and the database.",
            "",
        ]
        return "\n".join(lines)


class _NotifyingMediaStore(LocalMediaStore):
    """The local media bucket; like S3, every object written is announced to the functions whose
    notification filter (template.yaml, Events of Type S3) matches its key."""

    def __init__(self, root: Path, *, bucket: str, base_url: str, invoker: Any,
                 subscriptions: list[S3Subscription], lambdas: Any) -> None:
        super().__init__(root, bucket=bucket, base_url=base_url)
        self._invoker = invoker
        self._subscriptions = subscriptions
        self._lambdas = lambdas

    def put(self, key: str, data: bytes, content_type: str) -> Any:
        stored = super().put(key, data, content_type)

        for sub in self._subscriptions:
            if sub.wants(key, "ObjectCreated:Put"):
                event = s3_object_created_event(self.bucket, key, len(data), data=data)
                target = self._lambdas.pool(sub.function).function_name
                try:
                    self._invoker.invoke_async(target, event)
                except Exception:
                    logger.exception("S3 notification for %s to %s was lost", key, target)
        return stored
