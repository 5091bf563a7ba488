"""Webhooks function: the endpoints API (/webhooks...), and delivery of the outbox (direct invokes:
`deliver_webhooks` from writers and the maintenance sweep, `record_webhook_attempts` from the sender
outside the VPC). docs/webhooks.md."""

from __future__ import annotations

import time
from typing import Annotated, Any
from uuid import UUID

from aws_lambda_powertools import Metrics
from aws_lambda_powertools.event_handler import Response
from aws_lambda_powertools.event_handler.openapi.params import Query
from genjobs import dependencies
from genjobs.entry import Function
from genjobs.http.openapi import error_responses, success_response
from genjobs.http.resolver import create_resolver, merchant_id_from
from genjobs.models.actions import WEBHOOKS_ACTIONS, DeliverWebhooks, WebhooksAction
from genjobs.models.webhooks import (
    MAX_DELIVERIES_PAGE,
    CreateWebhookRequest,
    DeliveryPage,
    DeliveryRun,
    PingQueued,
    RotatedSecret,
    UpdateWebhookRequest,
    WebhookEndpoint,
    WebhookEndpointList,
    WebhookEndpointWithSecret,
)
from genjobs.ports import WebhookResult
from genjobs.services import webhooks
from genjobs.settings import get_settings

app = create_resolver()
# WebhookAttempts / WebhookAttemptsFailed: the template's WebhookFailureRateAlarm divides them.
metrics = Metrics(namespace=get_settings().metrics_namespace, service="webhooks")
JSON = "application/json"
# A delivery run stops claiming new batches after this long. In AWS (template: Timeout 30 s, as every function
# behind the HTTP API) a batch is only signed and enqueued to SQS, milliseconds; posting directly (make run, no
# queue) a batch takes at most ceil(WEBHOOK_BATCH_SIZE / SEND_PARALLELISM) x WEBHOOK_TIMEOUT_SECONDS = 40 s.
# A run cut short loses nothing: the claimed messages' lease expires and the next run claims them again.
RUN_SECONDS = 20.0
# Requests of a batch posted at once: one slow receiver does not hold up the others.
SEND_PARALLELISM = 16


def _merchant() -> str:
    return merchant_id_from(app, dependencies.get().settings.merchant_claim)


@app.post("/webhooks", summary="Create a webhook endpoint", description="An HTTPS URL (checked against private, "
                                                                        "loopback, link-local and metadata "
                                                                        "addresses) that receives the merchant's "
                                                                        "job events, optionally filtered by "
                                                                        "`events`; the signing secret is in "
                                                                        "this answer only. docs/webhooks.md.",
          responses={**success_response(201, "The endpoint, with its secret (shown only now)",
                                                     WebhookEndpointWithSecret), **error_responses(400, 409, 415)})
def create_webhook(request: CreateWebhookRequest) -> Response[WebhookEndpointWithSecret]:
    deps = dependencies.get()
    created = webhooks.create_endpoint(deps.db, deps.secret_box, _merchant(), request,
                                       allow_private=deps.settings.webhook_allow_private_urls)
    return Response(status_code=201, content_type=JSON, body=created,
                    headers={"Location": f"/webhooks/{created.id}", "Cache-Control": "no-store"})


@app.get("/webhooks", summary="List webhook endpoints", description="Every endpoint of the calling merchant, "
                                                                    "newest first, without secrets.",
         responses={**success_response(200, "The merchant's endpoints", WebhookEndpointList),
                                 **error_responses()})
def list_webhooks() -> WebhookEndpointList:
    return webhooks.list_endpoints(dependencies.get().db, _merchant())


@app.get("/webhooks/<webhook_id>", summary="Read a webhook endpoint", description="One endpoint of the calling "
                                                                                  "merchant (another merchant's "
                                                                                  "is 404), without its secret.",
         responses={**success_response(200, "The endpoint", WebhookEndpoint),
                                              **error_responses(404)})
def get_webhook(webhook_id: UUID) -> WebhookEndpoint:
    return webhooks.get_endpoint(dependencies.get().db, _merchant(), webhook_id)


@app.patch("/webhooks/<webhook_id>", summary="Change a webhook endpoint", description="Its URL (checked as on "
                                                                                      "create), description, "
                                                                                      "event types, or `enabled` "
                                                                                      "(enabling again resets its"
                                                                                      " failure count).",
           responses={**success_response(200, "The changed endpoint", WebhookEndpoint),
                                                **error_responses(400, 404, 415)})
def update_webhook(webhook_id: UUID, request: UpdateWebhookRequest) -> WebhookEndpoint:
    deps = dependencies.get()
    return webhooks.update_endpoint(deps.db, _merchant(), webhook_id, request,
                                    allow_private=deps.settings.webhook_allow_private_urls, now=deps.clock())


@app.delete("/webhooks/<webhook_id>", summary="Delete a webhook endpoint", description="The endpoint, its pending"
                                                                                       " messages and its "
                                                                                       "delivery history; nothing"
                                                                                       " more is sent to it.",
            responses={**success_response(204, "Deleted, with its deliveries"),
                                                 **error_responses(404)})
def delete_webhook(webhook_id: UUID) -> Response[str]:
    webhooks.delete_endpoint(dependencies.get().db, _merchant(), webhook_id)
    return Response(status_code=204, content_type=JSON, body="")


@app.post("/webhooks/<webhook_id>/rotate-secret", summary="Rotate a webhook secret",
          description="A new signing secret, shown only now; requests are signed with both for 24 hours.",
          responses={**success_response(200, "The new secret; the old one signs too for 24 h", RotatedSecret),
                     **error_responses(404)})
def rotate_webhook_secret(webhook_id: UUID) -> Response[RotatedSecret]:
    deps = dependencies.get()
    rotated = webhooks.rotate_secret(deps.db, deps.secret_box, _merchant(), webhook_id, now=deps.clock())
    return Response(status_code=200, content_type=JSON, body=rotated, headers={"Cache-Control": "no-store"})


@app.post("/webhooks/<webhook_id>/test", summary="Send a test ping", description="Queues a `ping` event to the "
                                                                                 "endpoint, delivered and retried"
                                                                                 " like any other; see it in the "
                                                                                 "deliveries.",
          responses={**success_response(202, "A ping event is on its way", PingQueued),
                                                    **error_responses(404)})
def test_webhook(webhook_id: UUID) -> Response[PingQueued]:
    deps = dependencies.get()
    queued = webhooks.send_test(deps.db, _merchant(), webhook_id, now=deps.clock())
    return Response(status_code=202, content_type=JSON, body=queued)


@app.get("/webhooks/<webhook_id>/deliveries", summary="List delivery attempts",
         description="Every attempt for the endpoint, newest first, with its status code, duration and error; "
                     "keyset `cursor`, `limit` up to 100.",
         responses={**success_response(200, "Delivery attempts, newest first", DeliveryPage),
                    **error_responses(400, 404)})
def list_webhook_deliveries(
    webhook_id: UUID,
    limit: Annotated[int, Query(ge=1, le=MAX_DELIVERIES_PAGE)] = 20,
    cursor: Annotated[str | None, Query(max_length=64, description="next_cursor of the previous page")] = None,
) -> DeliveryPage:
    return webhooks.list_deliveries(dependencies.get().db, _merchant(), webhook_id, limit=limit, cursor=cursor)


def deliver() -> DeliveryRun:
    deps = dependencies.get()
    settings = deps.settings
    started = time.monotonic()

    def keep_going() -> bool:
        return time.monotonic() - started < RUN_SECONDS

    common: dict[str, Any] = {"batch": settings.webhook_batch_size, "lease": settings.webhook_lease,
                              "keep_going": keep_going}
    if settings.webhook_queue_url:
        from genjobs.adapters.webhooks import SqsWebhookQueue

        return webhooks.deliver_due(deps.db, deps.secret_box, deps.clock,
                                    queue=SqsWebhookQueue(settings.webhook_queue_url), **common)
    return webhooks.deliver_due(deps.db, deps.secret_box, deps.clock, sender=deps.webhook_sender,
                                parallel=SEND_PARALLELISM, **common)


def _count(run: DeliveryRun) -> DeliveryRun:
    from aws_lambda_powertools.metrics import MetricUnit

    attempts = run.delivered + run.failed
    if attempts:
        metrics.add_metric(name="WebhookAttempts", unit=MetricUnit.Count, value=attempts)
        metrics.add_metric(name="WebhookAttemptsFailed", unit=MetricUnit.Count, value=run.failed)
    if run.enqueued:
        metrics.add_metric(name="WebhooksEnqueued", unit=MetricUnit.Count, value=run.enqueued)
    return run


def dispatch(action: WebhooksAction) -> DeliveryRun:
    if isinstance(action, DeliverWebhooks):
        return _count(deliver())
    results = [WebhookResult(message_id=str(r.message_id), attempt=r.attempt, status_code=r.status_code,
                             duration_ms=r.duration_ms, error=r.error, response_body=r.response_body)
               for r in action.results]
    deps = dependencies.get()
    return _count(webhooks.record_results(deps.db, results, deps.clock))


lambda_handler = Function("webhooks", http=app, actions=WEBHOOKS_ACTIONS, dispatch=dispatch, metrics=metrics)
