"""A real webhook receiver (threading http.server on 127.0.0.1) and a signature check written from the
Standard Webhooks spec, independently of the code under test (which signs with the `standardwebhooks`
package): HMAC-SHA256 over "{id}.{timestamp}.{body}" with the base64-decoded secret, `v1,` + base64."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from genjobs.ports import WebhookRequest, WebhookResult

KEY = "tests-only-webhook-secret-key-0123456789abcdef"


@dataclass
class Delivery:
    path: str
    headers: dict[str, str]
    body: bytes

    @property
    def webhook_id(self) -> str:
        return self.headers["webhook-id"]

    def json(self) -> Any:
        return json.loads(self.body)


def signatures_valid_for(delivery: Delivery, secret: str) -> bool:
    """True when one of the `v1,` signatures of the delivery is the HMAC of its content under `secret`."""
    key = base64.b64decode(secret.removeprefix("whsec_"))
    signed = f"{delivery.headers['webhook-id']}.{delivery.headers['webhook-timestamp']}.".encode() + delivery.body
    expected = base64.b64encode(hmac.new(key, signed, hashlib.sha256).digest()).decode()
    offered = [s.split(",", 1)[1] for s in delivery.headers["webhook-signature"].split(" ") if s.startswith("v1,")]
    return any(hmac.compare_digest(expected, s) for s in offered)


@dataclass
class Receiver:
    """Records every request; `answer(delivery)` picks (status, headers, body) for each, 204 by default."""

    answer: Callable[[Delivery], tuple[int, dict[str, str], bytes]] = lambda _: (204, {}, b"")
    deliveries: list[Delivery] = field(default_factory=list)
    url: str = ""
    _lock: threading.Lock = field(default_factory=threading.Lock)
    _arrived: threading.Condition = field(default_factory=threading.Condition)

    def record(self, delivery: Delivery) -> tuple[int, dict[str, str], bytes]:
        with self._arrived:
            self.deliveries.append(delivery)
            self._arrived.notify_all()
        return self.answer(delivery)

    def wait_for(self, predicate: Callable[[list[Delivery]], bool], timeout: float = 10.0) -> list[Delivery]:
        with self._arrived:
            if not self._arrived.wait_for(lambda: predicate(self.deliveries), timeout=timeout):
                raise AssertionError(f"the receiver did not get what was expected within {timeout} s: "
                                     f"{[d.json().get('type') for d in self.deliveries]}")
            return list(self.deliveries)

    def unique(self) -> dict[str, Delivery]:
        """De-duplicated by webhook-id, as a receiver should."""
        with self._arrived:
            return {d.webhook_id: d for d in self.deliveries}


@contextmanager
def running_receiver(given: Receiver | None = None) -> Iterator[Receiver]:
    receiver = given or Receiver()

    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def do_POST(self) -> None:
            length = int(self.headers.get("content-length") or 0)
            delivery = Delivery(self.path, {k.lower(): v for k, v in self.headers.items()}, self.rfile.read(length))
            status, headers, body = receiver.record(delivery)
            self.send_response(status)
            for name, value in headers.items():
                self.send_header(name, value)
            self.send_header("content-length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args: Any) -> None:
            pass

    class Server(ThreadingHTTPServer):
        request_queue_size = 128  # a burst of parallel deliveries must not overflow the listen backlog

    server = Server(("127.0.0.1", 0), Handler)
    server.daemon_threads = True
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    thread.start()
    receiver.url = f"http://127.0.0.1:{server.server_address[1]}/hooks"
    try:
        yield receiver
    finally:
        server.shutdown()
        server.server_close()


class RecordingSender:
    """A WebhookSender that answers from a table and remembers the requests (for the SQS path)."""

    def __init__(self, status: int = 200) -> None:
        self.status = status
        self.requests: list[WebhookRequest] = []

    def send(self, request: WebhookRequest) -> WebhookResult:
        self.requests.append(request)
        return WebhookResult(message_id=request.message_id, attempt=request.attempt, status_code=self.status,
                             duration_ms=1)
