"""Webhook adapters: the secret box (Fernet), the HTTP sender (SSRF-safe), the SQS queue to the sender
outside the VPC.

The sender resolves the host once per attempt, refuses the attempt when any address it resolves to is not
allowed (`genjobs.net.address_refusal`), and connects to the address it checked — the host name is used
only for the Host header and TLS (SNI and certificate verification) — so a DNS answer that changes between
the check and the connection (rebinding) cannot move the request. http.client never follows redirects:
a 3xx is a failed attempt. One attempt has `timeout` seconds in all (connect, send, headers, body); at most
1 KB of the answer is read and kept.
"""

from __future__ import annotations

import base64
import hashlib
import http.client
import json
import socket
import ssl
import threading
from collections.abc import Callable
from time import monotonic
from typing import Any
from urllib.parse import urlsplit

from genjobs.adapters import AwsAdapter
from genjobs.net import LOCAL_SCHEMES, address_refusal, url_refusal
from genjobs.ports import WebhookRequest, WebhookResult

MAX_RESPONSE_BYTES = 1024
USER_AGENT = "genjobs-webhooks/1"


# -- secrets at rest -------------------------------------------------------------------------------------


class FernetSecretBox:
    """Fernet (AES-128-CBC with HMAC-SHA256, from `cryptography`) under a key derived from the configured key
    material with SHA-256, so any long random string (a generated Secrets Manager value) is a key."""

    def __init__(self, key_material: str) -> None:
        from cryptography.fernet import Fernet

        if len(key_material) < 32:
            raise ValueError("the webhook secret key must be at least 32 characters")
        self._fernet = Fernet(base64.urlsafe_b64encode(hashlib.sha256(key_material.encode()).digest()))

    def encrypt(self, plaintext: str) -> str:
        return self._fernet.encrypt(plaintext.encode()).decode("ascii")

    def decrypt(self, token: str) -> str:
        return self._fernet.decrypt(token.encode("ascii")).decode()


class LazySecretBox:
    """A FernetSecretBox whose key material is loaded on first use (a Secrets Manager read at most once per
    container, and never by a container that does not touch webhooks)."""

    def __init__(self, load: Callable[[], str]) -> None:
        self._load = load
        self._box: FernetSecretBox | None = None
        self._lock = threading.Lock()

    def _get(self) -> FernetSecretBox:
        with self._lock:
            if self._box is None:
                self._box = FernetSecretBox(self._load())
            return self._box

    def encrypt(self, plaintext: str) -> str:
        return self._get().encrypt(plaintext)

    def decrypt(self, token: str) -> str:
        return self._get().decrypt(token)


class SecretsManagerKey(AwsAdapter):
    """The key material from a Secrets Manager secret (secretsmanager:GetSecretValue on that secret only)."""

    service = "secretsmanager"

    def __init__(self, secret_id: str, client: Any = None) -> None:
        super().__init__(client)
        self.secret_id = secret_id

    def __call__(self) -> str:
        return str(self.client.get_secret_value(SecretId=self.secret_id)["SecretString"])


class MissingSecretBox:
    """No key configured: creating or delivering webhooks fails loudly rather than storing a plain secret."""

    def encrypt(self, plaintext: str) -> str:
        raise RuntimeError("no webhook secret key: set WEBHOOK_SECRET_KEY or WEBHOOK_SECRET_KEY_ARN")

    def decrypt(self, token: str) -> str:
        raise RuntimeError("no webhook secret key: set WEBHOOK_SECRET_KEY or WEBHOOK_SECRET_KEY_ARN")


# -- the HTTP sender -------------------------------------------------------------------------------------

Resolver = Callable[[str, int], list[str]]


def resolve(host: str, port: int) -> list[str]:
    """Every address `host` resolves to (TCP), in the resolver's order."""
    infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    return list(dict.fromkeys(str(info[4][0]) for info in infos))


class _PinnedHTTPConnection(http.client.HTTPConnection):
    """http.client to a given address; `host` stays the name (the Host header)."""

    def __init__(self, host: str, port: int, address: str, timeout: float) -> None:
        super().__init__(host, port, timeout=timeout)
        self.address = address

    def connect(self) -> None:
        self.sock = socket.create_connection((self.address, self.port), self.timeout)
        self.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)


class _PinnedHTTPSConnection(http.client.HTTPSConnection):
    """TLS to a given address, verified against the host name (SNI and certificate)."""

    def __init__(self, host: str, port: int, address: str, timeout: float, context: ssl.SSLContext) -> None:
        super().__init__(host, port, timeout=timeout, context=context)
        self.address = address
        self.tls = context

    def connect(self) -> None:
        sock = socket.create_connection((self.address, self.port), self.timeout)
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self.sock = self.tls.wrap_socket(sock, server_hostname=self.host)


class HttpSender:
    """`genjobs.ports.WebhookSender` over http.client."""

    def __init__(self, *, allow_private: bool, timeout_seconds: float = 10.0, resolver: Resolver = resolve,
                 tls: ssl.SSLContext | None = None) -> None:
        self.allow_private = allow_private
        self.timeout = timeout_seconds
        self.resolver = resolver
        self.tls = tls or ssl.create_default_context()

    def address_for(self, host: str, port: int) -> tuple[str | None, str | None]:
        """The one address this attempt connects to, or None and why not: every address the name resolves
        to now is checked (any refused address refuses the attempt)."""
        try:
            addresses = self.resolver(host, port)
        except OSError as exc:
            return None, f"DNS lookup of {host} failed: {exc}"
        if not addresses:
            return None, f"{host} has no address"
        if not self.allow_private:
            for address in addresses:
                why = address_refusal(address)
                if why is not None:
                    return None, f"refused: {host} resolves to {address}, {why}"
        return addresses[0], None

    def send(self, request: WebhookRequest) -> WebhookResult:
        started = monotonic()

        def result(status: int | None, error: str | None, body: str | None = None) -> WebhookResult:
            return WebhookResult(message_id=request.message_id, attempt=request.attempt, status_code=status,
                                 duration_ms=int((monotonic() - started) * 1000), error=error, response_body=body)

        refusal = url_refusal(request.url, allow_private=self.allow_private)
        if refusal is not None:
            return result(None, f"refused: {refusal}")
        parts = urlsplit(request.url)
        host = parts.hostname or ""
        https = parts.scheme == "https"
        port = parts.port or (443 if https else 80)
        address, refusal = self.address_for(host, port)
        if address is None:
            return result(None, refusal)
        path = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
        deadline = started + self.timeout
        connection: http.client.HTTPConnection
        if https:
            connection = _PinnedHTTPSConnection(host, port, address, self.timeout, self.tls)
        elif parts.scheme in LOCAL_SCHEMES:
            connection = _PinnedHTTPConnection(host, port, address, self.timeout)
        else:  # pragma: no cover - url_refusal refused it
            return result(None, "unsupported scheme")
        try:
            connection.connect()
            if connection.sock is not None:
                connection.sock.settimeout(max(0.001, deadline - monotonic()))
            headers = {**request.headers, "user-agent": USER_AGENT}
            connection.request("POST", path, body=request.body.encode(), headers=headers)
            response = connection.getresponse()
            if connection.sock is not None:
                connection.sock.settimeout(max(0.001, deadline - monotonic()))
            body = response.read(MAX_RESPONSE_BYTES).decode("utf-8", "replace")
            status = response.status
            location = response.getheader("location")
        except (OSError, http.client.HTTPException) as exc:
            kind = "timed out" if isinstance(exc, TimeoutError | socket.timeout) else "failed"
            return result(None, f"request {kind} after {int((monotonic() - started) * 1000)} ms: "
                                f"{type(exc).__name__}: {exc}"[:1000])
        finally:
            connection.close()
        error = None
        if 300 <= status < 400:
            error = f"redirect to {location!r} not followed"[:1000]
        elif not 200 <= status < 300:
            error = f"the receiver answered {status}"
        return result(status, error, body.replace("\x00", ""))


# -- the queue to the sender outside the VPC -------------------------------------------------------------


class SqsWebhookQueue(AwsAdapter):
    """SendMessageBatch (10 per call, the SQS limit) of signed requests; the sender function reads them."""

    service = "sqs"

    def __init__(self, queue_url: str, client: Any = None) -> None:
        super().__init__(client)
        self.queue_url = queue_url

    def enqueue(self, requests: list[WebhookRequest]) -> None:
        for start in range(0, len(requests), 10):
            chunk = requests[start:start + 10]
            entries = [{"Id": str(i), "MessageBody": json.dumps(request_to_json(r))} for i, r in enumerate(chunk)]
            answer = self.client.send_message_batch(QueueUrl=self.queue_url, Entries=entries)
            failed = answer.get("Failed") or []
            if failed:
                # the messages stay leased in the database: the next claim after the lease sends them again
                raise RuntimeError(f"SQS refused {len(failed)} of {len(entries)} webhook requests: {failed[:3]}")


def request_to_json(request: WebhookRequest) -> dict[str, Any]:
    return {"message_id": request.message_id, "attempt": request.attempt, "url": request.url,
            "headers": request.headers, "body": request.body}


def request_from_json(document: dict[str, Any]) -> WebhookRequest:
    return WebhookRequest(message_id=str(document["message_id"]), attempt=int(document["attempt"]),
                          url=str(document["url"]), headers={str(k): str(v) for k, v in document["headers"].items()},
                          body=str(document["body"]))


def result_to_json(result: WebhookResult) -> dict[str, Any]:
    return {"message_id": result.message_id, "attempt": result.attempt, "status_code": result.status_code,
            "duration_ms": result.duration_ms, "error": result.error, "response_body": result.response_body}
