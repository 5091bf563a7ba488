"""Webhooks: the endpoints API of a merchant, and delivery of the outbox (sql/090) — docs/webhooks.md.

Endpoints. A secret (`whsec_` + base64 of 32 random bytes) is made here, shown once, and stored encrypted
by the `SecretBox` (a key from configuration): the table holds no plain secret. A rotation keeps the old
secret signing beside the new one for 24 hours (two `v1,` signatures, as the Standard Webhooks spec allows).
URLs follow `genjobs.net` (https only in AWS; no private, loopback, link-local or special address).

Delivery. `deliver_due` claims due messages (a lease; SKIP LOCKED, so workers share), signs each with the
`standardwebhooks` package over `{"type", "timestamp", "data"}`, then either posts them itself through a
`WebhookSender` and records each result (locally), or hands them to a `WebhookQueue` (AWS: SQS, read by a
sender outside the VPC, which reports results back through `record_results`). Retries, the 410 and 5-day
disabling live in the database (genjobs_record_webhook_attempt_v1), once.
"""

from __future__ import annotations

import base64
import binascii
import json
import logging
import secrets
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime, timedelta
from typing import Any
from uuid import UUID

from standardwebhooks.webhooks import Webhook

from genjobs.data import webhooks as webhook_data
from genjobs.db import Database
from genjobs.errors import BadRequest, Conflict, NotFound, ValidationFailed
from genjobs.models.jobs import job_from_row
from genjobs.models.webhooks import (
    MAX_ENDPOINTS_PER_MERCHANT,
    CreateWebhookRequest,
    DeliveryPage,
    DeliveryRun,
    DueMessage,
    PingQueued,
    RotatedSecret,
    UpdateWebhookRequest,
    WebhookEndpoint,
    WebhookEndpointList,
    WebhookEndpointWithSecret,
)
from genjobs.net import url_refusal
from genjobs.ports import Clock, SecretBox, WebhookQueue, WebhookRequest, WebhookResult, WebhookSender

logger = logging.getLogger("genjobs.webhooks")

SECRET_PREFIX = "whsec_"  # noqa: S105 - the prefix of every secret, not a secret
SECRET_BYTES = 32
ROTATION_OVERLAP = timedelta(hours=24)
MAX_CURSOR_LENGTH = 64


def new_secret() -> str:
    return SECRET_PREFIX + base64.b64encode(secrets.token_bytes(SECRET_BYTES)).decode("ascii")


def _check_url(url: str, allow_private: bool) -> None:
    refusal = url_refusal(url, allow_private=allow_private)
    if refusal is not None:
        raise ValidationFailed(f"The webhook URL cannot be used: {refusal}.", details={"url": url})


def _not_found(endpoint_id: UUID) -> NotFound:
    return NotFound("Webhook endpoint not found.", details={"webhook_id": str(endpoint_id)})


# -- endpoints -------------------------------------------------------------------------------------------


def create_endpoint(db: Database, box: SecretBox, merchant_id: str, request: CreateWebhookRequest, *,
                    allow_private: bool) -> WebhookEndpointWithSecret:
    _check_url(request.url, allow_private)
    secret = new_secret()
    created = webhook_data.create_endpoint(
        db, merchant_id=merchant_id, url=request.url, description=request.description,
        event_types=None if request.events is None else sorted(set(request.events)),
        secret_encrypted=box.encrypt(secret), limit=MAX_ENDPOINTS_PER_MERCHANT)
    if created is None:
        raise Conflict(f"A merchant may have at most {MAX_ENDPOINTS_PER_MERCHANT} webhook endpoints.",
                       details={"limit": MAX_ENDPOINTS_PER_MERCHANT})
    return WebhookEndpointWithSecret(**created.model_dump(), secret=secret)


def list_endpoints(db: Database, merchant_id: str) -> WebhookEndpointList:
    return WebhookEndpointList(items=webhook_data.list_endpoints(db, merchant_id))


def get_endpoint(db: Database, merchant_id: str, endpoint_id: UUID) -> WebhookEndpoint:
    found = webhook_data.find_endpoint(db, merchant_id, endpoint_id)
    if found is None:
        raise _not_found(endpoint_id)
    return found


def update_endpoint(db: Database, merchant_id: str, endpoint_id: UUID, request: UpdateWebhookRequest, *,
                    allow_private: bool, now: datetime) -> WebhookEndpoint:
    changes = request.model_dump(exclude_unset=True)
    for name in ("url", "enabled"):
        if name in changes and changes[name] is None:
            raise ValidationFailed(f"{name} cannot be null.", details={"field": name})
    if "url" in changes:
        _check_url(changes["url"], allow_private)
    if changes.get("events") is not None:
        changes["events"] = sorted(set(changes["events"]))
    updated = webhook_data.update_endpoint(db, merchant_id, endpoint_id, changes, now)
    if updated is None:
        raise _not_found(endpoint_id)
    return updated


def delete_endpoint(db: Database, merchant_id: str, endpoint_id: UUID) -> None:
    if not webhook_data.delete_endpoint(db, merchant_id, endpoint_id):
        raise _not_found(endpoint_id)


def rotate_secret(db: Database, box: SecretBox, merchant_id: str, endpoint_id: UUID, *,
                  now: datetime) -> RotatedSecret:
    secret = new_secret()
    until = webhook_data.rotate_secret(db, merchant_id, endpoint_id, secret_encrypted=box.encrypt(secret),
                                       overlap=ROTATION_OVERLAP, now=now)
    if until is None:
        raise _not_found(endpoint_id)
    return RotatedSecret(id=endpoint_id, secret=secret, previous_secret_expires_at=until)


def send_test(db: Database, merchant_id: str, endpoint_id: UUID, *, now: datetime) -> PingQueued:
    message_id = webhook_data.enqueue_ping(db, merchant_id, endpoint_id, {
        "webhook": {"id": str(endpoint_id)}, "sent_at": now.isoformat()})
    if message_id is None:
        raise _not_found(endpoint_id)
    return PingQueued(message_id=message_id)


def encode_cursor(attempt_id: int) -> str:
    return base64.urlsafe_b64encode(json.dumps({"a": attempt_id}).encode()).rstrip(b"=").decode("ascii")


def decode_cursor(cursor: str) -> int:
    invalid = BadRequest("The cursor is not valid; start again without it.", details={"parameter": "cursor"})
    if not cursor or len(cursor) > MAX_CURSOR_LENGTH:
        raise invalid
    try:
        document = json.loads(base64.b64decode(cursor + "=" * (-len(cursor) % 4), altchars=b"-_", validate=True))
        value = document["a"]
    except (binascii.Error, ValueError, KeyError, TypeError) as exc:
        raise invalid from exc
    if not isinstance(value, int) or isinstance(value, bool) or not 0 < value < 2**63:
        raise invalid
    return value


def list_deliveries(db: Database, merchant_id: str, endpoint_id: UUID, *, limit: int,
                    cursor: str | None) -> DeliveryPage:
    before = decode_cursor(cursor) if cursor is not None else None
    rows = webhook_data.list_attempts(db, merchant_id, endpoint_id, before_id=before, limit=limit + 1)
    if rows is None:
        raise _not_found(endpoint_id)
    page, more = rows[:limit], len(rows) > limit
    return DeliveryPage(items=page, next_cursor=encode_cursor(page[-1].id) if more and page else None)


# -- delivery --------------------------------------------------------------------------------------------


def payload_of(message: DueMessage) -> dict[str, Any]:
    """{"type", "timestamp", "data"}; a job event's `data.job` is the job as GET /jobs/{id} returns it."""
    data = dict(message.data)
    if isinstance(data.get("job"), dict):
        data["job"] = job_from_row(data["job"]).model_dump(mode="json")
    return {"type": message.event_type, "timestamp": message.occurred_at.astimezone(UTC).isoformat(),
            "data": data}


def sign(message: DueMessage, box: SecretBox, now: datetime) -> WebhookRequest:
    """The Standard Webhooks headers: webhook-id (the message id, the same on every attempt),
    webhook-timestamp (now) and webhook-signature (one `v1,` signature per secret in use)."""
    body = json.dumps(payload_of(message), separators=(",", ":"), ensure_ascii=False)
    msg_id = str(message.id)
    moment = now.astimezone(UTC)
    keys = [message.secret_encrypted] + ([message.previous_secret_encrypted]
                                         if message.previous_secret_encrypted else [])
    signature = " ".join(Webhook(box.decrypt(k)).sign(msg_id, moment, body) for k in keys)
    return WebhookRequest(
        message_id=msg_id, attempt=message.attempt, url=message.url, body=body,
        headers={"webhook-id": msg_id, "webhook-timestamp": str(int(moment.timestamp())),
                 "webhook-signature": signature, "content-type": "application/json"})


def deliver_due(
    db: Database,
    box: SecretBox,
    clock: Clock,
    *,
    sender: WebhookSender | None = None,
    queue: WebhookQueue | None = None,
    batch: int,
    lease: timedelta,
    parallel: int = 1,
    keep_going: Callable[[], bool] = lambda: True,
) -> DeliveryRun:
    """Deliver (or enqueue) due messages batch after batch until none is due or `keep_going()` says stop.
    `parallel` requests of a batch are posted at once (threads: the wait is the receivers'); the results
    are recorded after the batch, on the one database connection."""
    if (sender is None) == (queue is None):
        raise TypeError("give a sender or a queue")
    run = DeliveryRun()
    while keep_going():
        claimed = webhook_data.claim_due(db, now=clock(), batch=batch, lease=lease)
        if not claimed:
            break
        run.claimed += len(claimed)
        requests = [sign(m, box, clock()) for m in claimed]
        if queue is not None:
            queue.enqueue(requests)
            run.enqueued += len(requests)
            continue
        assert sender is not None
        results = send_all(sender, requests, parallel)
        tally = record_results(db, results, clock)
        run.delivered += tally.delivered
        run.failed += tally.failed
    return run


def send_all(sender: WebhookSender, requests: Sequence[WebhookRequest], parallel: int) -> list[WebhookResult]:
    if parallel <= 1 or len(requests) <= 1:
        return [sender.send(r) for r in requests]
    with ThreadPoolExecutor(max_workers=min(parallel, len(requests)), thread_name_prefix="webhook-send") as pool:
        return list(pool.map(sender.send, requests))


def record_results(db: Database, results: Sequence[WebhookResult], clock: Clock) -> DeliveryRun:
    """Record attempts (also what the sender outside the VPC reports), a batch in one statement; a duplicate
    report changes nothing."""
    run = DeliveryRun()
    for outcome in webhook_data.record_attempts(db, results, clock()):
        if outcome == "delivered":
            run.delivered += 1
        elif outcome in ("retrying", "failed", "endpoint_disabled"):
            run.failed += 1
        if outcome == "endpoint_disabled":
            logger.warning("a webhook endpoint was disabled (410, or 5 days of failures)")
    return run
