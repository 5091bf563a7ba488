"""Webhook sender: outside the VPC (it reaches the internet without a NAT gateway, and cannot reach the
database). It reads signed requests from the SQS queue the webhooks function fills, posts each with the
SSRF-safe HTTP sender (https only, public addresses only, 10 s, no redirects, 1 KB of the answer), and
reports the results back by invoking the webhooks function (`record_webhook_attempts`), which records them.

It holds no secret: the requests arrive signed. When the report cannot be made, the whole batch is
reported failed (SQS partial batch response), so SQS delivers it again; the receiver sees the same
webhook-id twice at worst, and the database records each attempt once (message, attempt). docs/webhooks.md.
"""

from __future__ import annotations

import json
import logging
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from genjobs.adapters.webhooks import request_from_json, result_to_json
from genjobs.entry import Function
from genjobs.ports import FunctionInvoker, InvokeFailed, WebhookRequest, WebhookResult, WebhookSender
from genjobs.settings import get_settings

logger = logging.getLogger("genjobs.webhook_sender")
SEND_PARALLELISM = 10  # the event source mapping's BatchSize


def handle_batch(event: dict[str, Any], *, sender: WebhookSender, invoker: FunctionInvoker,
                 webhooks_function: str) -> dict[str, Any]:
    requests: list[tuple[str, WebhookRequest]] = []
    for record in event.get("Records") or []:
        try:
            requests.append((str(record["messageId"]), request_from_json(json.loads(record["body"]))))
        except (KeyError, TypeError, ValueError):
            # not ours to retry: a malformed message would come back until the DLQ takes it
            logger.exception("malformed webhook request dropped: %s", str(record.get("messageId")))
    if not requests:
        return {"batchItemFailures": []}
    with ThreadPoolExecutor(max_workers=min(SEND_PARALLELISM, len(requests))) as pool:
        results: list[WebhookResult] = list(pool.map(sender.send, [r for _, r in requests]))
    try:
        answer = invoker.invoke_sync(webhooks_function, {
            "action": "record_webhook_attempts", "results": [result_to_json(r) for r in results]})
        if not (isinstance(answer, dict) and answer.get("ok")):
            raise InvokeFailed(f"record_webhook_attempts answered {str(answer)[:300]}")
    except InvokeFailed:
        logger.exception("results not recorded; SQS delivers the batch again")
        return {"batchItemFailures": [{"itemIdentifier": message_id} for message_id, _ in requests]}
    return {"batchItemFailures": []}


def _handle(event: dict[str, Any]) -> dict[str, Any]:
    # Not genjobs.dependencies: this function has no database settings (it cannot reach the database), and
    # the shared objects include the database pool.
    from genjobs.adapters.lambda_invoker import LambdaInvoker
    from genjobs.adapters.webhooks import HttpSender

    settings = get_settings()
    sender = HttpSender(allow_private=settings.webhook_allow_private_urls,
                        timeout_seconds=settings.webhook_timeout_seconds)
    return handle_batch(event, sender=sender, invoker=LambdaInvoker(),
                        webhooks_function=settings.webhooks_function_name)


lambda_handler = Function("webhook_sender", sqs=_handle)
