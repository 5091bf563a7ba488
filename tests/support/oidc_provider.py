"""A small OpenID Connect provider on 127.0.0.1 for the console's sign-in tests: the authorization endpoint
redirects back with a single-use code, and the token endpoint exchanges it only with the PKCE verifier whose
S256 challenge came with the authorization request (RFC 7636 §4.6). It answers the token request with CORS
headers for the console's origin, as a provider serving a browser client must. Real HTTP, no mocks."""

from __future__ import annotations

import base64
import hashlib
import json
import secrets
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlencode, urlsplit


@dataclass
class Exchange:
    code: str
    verifier_matched: bool
    granted: bool


@dataclass
class OidcProvider:
    client_id: str
    issue_token: Callable[[], str]
    deny: bool = False
    exchanges: list[Exchange] = field(default_factory=list)
    _codes: dict[str, dict[str, str]] = field(default_factory=dict)
    _server: ThreadingHTTPServer | None = None

    @property
    def base_url(self) -> str:
        assert self._server is not None
        return f"http://127.0.0.1:{self._server.server_port}"

    def config(self, name: str = "Test IdP") -> dict[str, Any]:
        return {"name": name, "authorizationEndpoint": f"{self.base_url}/authorize",
                "tokenEndpoint": f"{self.base_url}/token", "clientId": self.client_id, "scope": "openid"}

    def __enter__(self) -> OidcProvider:
        provider = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, format: str, *args: Any) -> None:
                pass

            def do_GET(self) -> None:  # the authorization endpoint
                url = urlsplit(self.path)
                query = {k: v[0] for k, v in parse_qs(url.query).items()}
                if url.path != "/authorize" or query.get("client_id") != provider.client_id \
                        or query.get("response_type") != "code" or query.get("code_challenge_method") != "S256" \
                        or not query.get("code_challenge") or not query.get("redirect_uri"):
                    self._send(400, {"error": "invalid_request"})
                    return
                if provider.deny:
                    answer = {"error": "access_denied", "error_description": "the user said no",
                              "state": query.get("state", "")}
                else:
                    code = secrets.token_urlsafe(16)
                    provider._codes[code] = query
                    answer = {"code": code, "state": query.get("state", "")}
                self.send_response(302)
                self.send_header("Location", f"{query['redirect_uri']}?{urlencode(answer)}")
                self.send_header("Content-Length", "0")
                self.end_headers()

            def do_POST(self) -> None:  # the token endpoint
                length = int(self.headers.get("Content-Length") or 0)
                form = {k: v[0] for k, v in parse_qs(self.rfile.read(length).decode()).items()}
                request = provider._codes.pop(form.get("code", ""), None)  # single use
                verifier = form.get("code_verifier", "")
                digest = base64.urlsafe_b64encode(hashlib.sha256(verifier.encode()).digest()).rstrip(b"=").decode()
                matched = request is not None and digest == request["code_challenge"]
                granted = (matched and request is not None and form.get("grant_type") == "authorization_code"
                           and form.get("client_id") == provider.client_id
                           and form.get("redirect_uri") == request["redirect_uri"])
                provider.exchanges.append(Exchange(form.get("code", ""), matched, granted))
                if not granted:
                    self._send(400, {"error": "invalid_grant"})
                    return
                self._send(200, {"access_token": provider.issue_token(), "token_type": "Bearer", "expires_in": 3600})

            def _send(self, status: int, body: dict[str, Any]) -> None:
                data = json.dumps(body).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Cache-Control", "no-store")
                if self.headers.get("Origin"):
                    self.send_header("Access-Control-Allow-Origin", self.headers["Origin"])
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        threading.Thread(target=self._server.serve_forever, kwargs={"poll_interval": 0.1}, daemon=True).start()
        return self

    def __exit__(self, *exc: object) -> None:
        assert self._server is not None
        self._server.shutdown()
        self._server.server_close()
