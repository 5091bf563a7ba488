"""The HTTP front door of the runner: API Gateway (routes from template.yaml, the JWT authorizer, event and
response mapping) plus local-only extras: `/media/...` (the local media bucket), the web console at
`/console/`, `/openapi.json` and Swagger UI at `/docs`.

Standard library only: `ThreadingHTTPServer` with HTTP/1.1 keep-alive; each connection gets a daemon thread.
"""

from __future__ import annotations

import json
import logging
import mimetypes
import re
import socket
import time
import traceback
from collections.abc import Callable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import unquote, urlsplit

from genjobs.ports import InvokeFailed

from local_runner.apigw import (
    BadIntegrationResponse,
    HttpRequest,
    HttpResponse,
    build_event,
    gateway_error,
    http_date,
    json_response,
    map_response,
)
from local_runner.auth import Authorization, JwtAuthorizer, Rejection
from local_runner.console import console_response
from local_runner.lambdas import LocalLambdas
from local_runner.openapi import SWAGGER_ASSETS, SWAGGER_HTML, swagger_assets_dir
from local_runner.template import RouteTable

logger = logging.getLogger("local_runner.http")
access_log = logging.getLogger("local_runner.access")

MAX_BODY_BYTES = 10 * 1024 * 1024  # API Gateway HTTP API payload limit
HTTP_INTEGRATION_TIMEOUT_SECONDS = 30.0
_RANGE = re.compile(r"^bytes=(\d*)-(\d*)$")


class PayloadTooLarge(Exception):
    pass


# Lambda's Invoke API path (the function name, ARN or name:qualifier, URL-encoded)
LAMBDA_INVOKE_PATH = re.compile(r"/2015-03-31/functions/(?P<name>[^/]+)/invocations")


class Gateway:
    """Everything a request needs, independent of the socket server (tests call `handle` directly)."""

    def __init__(self, routes: RouteTable, lambdas: LocalLambdas, authorizer: JwtAuthorizer, *,
                 media_root: Path, openapi: Callable[[], dict[str, Any]]) -> None:
        self.routes = routes
        self.lambdas = lambdas
        self.authorizer = authorizer
        self.media_root = media_root.resolve()
        self.openapi = openapi
        self._openapi_body: bytes | None = None

    def handle(self, request: HttpRequest) -> tuple[HttpResponse, str]:
        """(response, what served it: a function name, 'gateway', 'media', 'console', 'docs')."""
        matched = self.routes.match(request.method, request.raw_path)
        if matched is None:
            local = self._local(request)
            if local is not None:
                return local
            return gateway_error(404, "Not Found"), "gateway"
        route, params = matched
        authorization: Authorization | None = None
        if route.authorizer:
            verdict = self.authorizer.authorize(request.header("authorization"), route.scopes)
            if isinstance(verdict, Rejection):
                if verdict.status == 403:
                    return gateway_error(403, "Forbidden"), "gateway"
                return gateway_error(401, "Unauthorized", [("WWW-Authenticate", verdict.www_authenticate)]), "gateway"
            authorization = verdict
        event = build_event(request, route_key=route.route_key, path_parameters=params, authorization=authorization)
        pool = self.lambdas.pool(route.function)
        timeout = min(float(pool.spec.timeout_seconds), HTTP_INTEGRATION_TIMEOUT_SECONDS)
        try:
            result = pool.invoke(event, timeout_seconds=timeout)
        except Exception:
            logger.error("%s raised while serving %s:\n%s", route.function, route.route_key, traceback.format_exc())
            return gateway_error(500, "Internal Server Error"), route.function
        try:
            response = map_response(result, event["requestContext"]["requestId"])
        except BadIntegrationResponse as exc:
            logger.error("%s returned a response API Gateway cannot use: %s", route.function, exc)
            return gateway_error(500, "Internal Server Error"), route.function
        return response, route.function

    # ------------------------------------------------------------------ local extras
    def _local(self, request: HttpRequest) -> tuple[HttpResponse, str] | None:
        method, path = request.method.upper(), request.raw_path
        invoked = LAMBDA_INVOKE_PATH.fullmatch(path)
        if method == "POST" and invoked is not None:
            return self._invoke(unquote(invoked["name"]), request.body), "lambda"
        if method not in ("GET", "HEAD"):
            return None
        if path.startswith("/media/"):
            return self._media(request), "media"
        console = console_response(path)
        if console is not None:
            return console, "console"
        if path == "/openapi.json":
            if self._openapi_body is None:
                self._openapi_body = json.dumps(self.openapi(), indent=2).encode()
            return json_response(200, self._openapi_body, [("Cache-Control", "no-cache")]), "docs"
        if path in ("/docs", "/docs/"):
            return HttpResponse(200, [("Content-Type", "text/html; charset=utf-8"), ("Cache-Control", "no-cache")],
                                SWAGGER_HTML.encode()), "docs"
        name = path.removeprefix("/docs/")
        if path.startswith("/docs/") and name in SWAGGER_ASSETS:
            data = (swagger_assets_dir() / name).read_bytes()
            return HttpResponse(200, [("Content-Type", SWAGGER_ASSETS[name]),
                                      ("Cache-Control", "public, max-age=86400")], data), "docs"
        return None

    def _invoke(self, name: str, body: bytes) -> HttpResponse:
        """Lambda's Invoke API, RequestResponse only: the function's result as the body (200); a function that
        raised is still 200, with `X-Amz-Function-Error: Unhandled` and `{errorMessage, errorType}`
        (https://docs.aws.amazon.com/lambda/latest/api/API_Invoke.html). Unsigned: the runner listens on
        127.0.0.1 only. The trusted callers' direct invocations (`{"action": ...}`) reach the functions this way."""
        try:
            pool = self.lambdas.pool_for(name)
        except InvokeFailed:
            return json_response(404, {"Type": "User", "message": f"Function not found: {name}"},
                                 [("X-Amzn-ErrorType", "ResourceNotFoundException")])
        try:
            payload = json.loads(body or b"{}")
        except (UnicodeDecodeError, json.JSONDecodeError):
            return json_response(400, {"Type": "User", "message": "Could not parse request body into json"},
                                 [("X-Amzn-ErrorType", "InvalidRequestContentException")])
        except (RecursionError, ValueError) as exc:
            # valid JSON that Python's decoder cannot take (nested past its recursion limit, an integer past its
            # digit limit): in Lambda the runtime fails to unmarshal the event before any handler runs
            return json_response(200, {"errorMessage": f"Unable to unmarshal input: {exc}"[:300],
                                       "errorType": "Runtime.UnmarshalError"}, [("X-Amz-Function-Error", "Unhandled")])
        try:
            answer = json.dumps(pool.invoke(payload)).encode()
        except Exception as exc:
            logger.error("%s raised on a direct invoke:\n%s", name, traceback.format_exc())
            return json_response(200, {"errorMessage": str(exc), "errorType": type(exc).__name__},
                                 [("X-Amz-Function-Error", "Unhandled")])
        return json_response(200, answer)

    def media_path(self, raw_path: str) -> Path | None:
        """The file for /media/<key>, or None (missing, or outside the media directory)."""
        key = unquote(raw_path.removeprefix("/media/"))
        if not key or "\x00" in key or "\\" in key or key.startswith("/"):
            return None
        if any(part in ("", ".", "..") for part in key.split("/")):
            return None
        path = (self.media_root / key).resolve()
        if self.media_root not in path.parents or not path.is_file():
            return None
        return path

    def _media(self, request: HttpRequest) -> HttpResponse:
        path = self.media_path(request.raw_path)
        if path is None:
            return gateway_error(404, "Not Found")
        data = path.read_bytes()
        content_type = mimetypes.guess_type(path.name)[0] or "application/octet-stream"
        headers = [("Content-Type", content_type), ("Accept-Ranges", "bytes"),
                   ("Last-Modified", http_date(path.stat().st_mtime)), ("Cache-Control", "no-cache")]
        byte_range = _parse_range(request.header("range"), len(data))
        if byte_range == "invalid":
            return HttpResponse(416, [("Content-Range", f"bytes */{len(data)}")], b"")
        if isinstance(byte_range, tuple):
            start, end = byte_range
            headers.append(("Content-Range", f"bytes {start}-{end}/{len(data)}"))
            return HttpResponse(206, headers, data[start:end + 1])
        return HttpResponse(200, headers, data)


def _parse_range(header: str | None, size: int) -> tuple[int, int] | str | None:
    if not header:
        return None
    match = _RANGE.match(header.strip())
    if not match or (not match.group(1) and not match.group(2)):
        return None  # unsupported (e.g. several ranges): the whole file
    if match.group(1):
        start = int(match.group(1))
        end = min(int(match.group(2)), size - 1) if match.group(2) else size - 1
    else:
        start, end = max(0, size - int(match.group(2))), size - 1
    if start >= size or start > end:
        return "invalid"
    return start, end


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server_version = "genjobs-local"
    sys_version = ""
    server: LocalHttpServer

    def setup(self) -> None:
        super().setup()
        # Headers and body go out in two writes; with Nagle's algorithm the second waits for the client's
        # delayed ACK (~40 ms on Linux) on every kept-alive request after the first.
        self.connection.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)

    def _read_body(self) -> bytes:
        if "chunked" in (self.headers.get("Transfer-Encoding") or "").lower():
            chunks: list[bytes] = []
            total = 0
            while True:
                size_line = self.rfile.readline(1024)
                size = int(size_line.split(b";", 1)[0].strip() or b"0", 16)
                if size == 0:
                    while self.rfile.readline(1024) not in (b"\r\n", b"\n", b""):
                        pass  # trailers
                    break
                total += size
                if total > MAX_BODY_BYTES:
                    raise PayloadTooLarge
                chunks.append(self.rfile.read(size))
                self.rfile.readline(1024)
            return b"".join(chunks)
        length = int(self.headers.get("Content-Length") or 0)
        if length > MAX_BODY_BYTES:
            raise PayloadTooLarge
        return self.rfile.read(length) if length > 0 else b""

    def _serve(self) -> None:
        started = time.perf_counter()
        target = urlsplit(self.path)
        try:
            body = self._read_body()
        except PayloadTooLarge:
            self.close_connection = True
            self._send(gateway_error(413, "Request Entity Too Large"), started, "gateway")
            return
        except ValueError:
            self.close_connection = True
            self._send(gateway_error(400, "Bad Request"), started, "gateway")
            return
        request = HttpRequest(
            method=self.command, raw_path=target.path or "/", raw_query=target.query,
            headers=list(self.headers.items()), body=body, source_ip=self.client_address[0],
            protocol=self.request_version,
        )
        try:
            gateway = self.server.gateway
            if gateway is None:
                raise RuntimeError("the runner is not ready")
            response, served_by = gateway.handle(request)
        except Exception:
            logger.exception("the runner failed on %s %s", self.command, self.path)
            response, served_by = gateway_error(500, "Internal Server Error"), "gateway"
        self._send(response, started, served_by)

    def _send(self, response: HttpResponse, started: float, served_by: str) -> None:
        try:
            self.send_response(response.status)
            for name, value in response.headers:
                if name.lower() not in ("content-length", "connection", "transfer-encoding"):
                    self.send_header(name, value)
            self.send_header("Content-Length", str(len(response.body)))
            if self.close_connection:
                self.send_header("Connection", "close")
            self.end_headers()
            if self.command != "HEAD" and response.body:
                self.wfile.write(response.body)
        except (BrokenPipeError, ConnectionResetError):
            self.close_connection = True
        elapsed_ms = (time.perf_counter() - started) * 1000
        access_log.info('%s "%s %s" %d %d %.1fms %s', self.client_address[0], self.command, self.path,
                        response.status, len(response.body), elapsed_ms, served_by)

    do_GET = do_POST = do_PUT = do_PATCH = do_DELETE = do_OPTIONS = do_HEAD = _serve  # noqa: N815 - stdlib names

    def __getattr__(self, name: str) -> Any:
        """Any other method (TRACE, QUERY, ...) goes through the route table too: no route is API Gateway's
        404, not the standard library's 501."""
        if name.startswith("do_") and name[3:].isalpha():
            return self._serve
        raise AttributeError(name)

    def log_message(self, format: str, *args: Any) -> None:
        logger.debug("%s " + format, self.client_address[0], *args)


class LocalHttpServer(ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True
    request_queue_size = 64
    gateway: Gateway | None = None


def make_server(host: str, port: int) -> LocalHttpServer:
    """Bound and listening (connections wait in the backlog); set `gateway`, then `serve_forever()`."""
    return LocalHttpServer((host, port), _Handler)


def port_is_free(host: str, port: int) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            probe.bind((host, port))
        except OSError:
            return False
    return True
