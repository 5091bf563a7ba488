"""The one handler entry every function uses: `Function(...)` is its `lambda_handler`.

A function declares what it answers — HTTP routes (a resolver), direct invocations (a pydantic union of
action models from `genjobs.models.actions` and a dispatch), S3 notifications, schedules, a CloudFormation
custom resource — and the entry classifies each event, runs the matching part and answers in one shape:

* HTTP (API Gateway payload 2.0): bodies the API cannot take are refused first (`genjobs.http.requests`),
  then a plain GET route is answered by the resolver's fast path (`genjobs.http.fast_path`: the same route
  function and annotations, without powertools' per-request machinery) and anything else by the resolver;
  errors are `{"error": {"code", "message", "details"}}` via `genjobs.http.errors`.
* direct invoke `{"action": ...}`: `{"ok": true, "result": ...}` or `{"ok": false, "error": {...}}` (callers
  are trusted through IAM, so the merchant id may travel in the payload). An action may declare errors that
  propagate instead (`propagate={"run_job": (DatabaseUnavailable,)}`): an *async* invoke answered with
  `ok:false` counts as a success to Lambda, so an infrastructure failure of the worker must raise out of the
  handler — then Lambda retries the event and, after its retries, the dead-letter queue sees it. Such an
  error is logged (with the action) before it leaves.
* custom resource: CloudFormation always gets an answer, SUCCESS or FAILED with the reason, whatever is
  raised — otherwise the stack waits an hour for its timeout.
* SQS batches (the webhook sender): the handler answers the partial batch response itself.
* anything the function does not take: logged and answered `{"ok": false, "error": UNSUPPORTED_EVENT}`.

After any event, if a statement it sent wrote webhook events (`genjobs.db.outbox`), the entry asks the
webhooks function for a prompt delivery with an asynchronous invoke; if that fails the maintenance sweep
delivers them a minute later.
"""

from __future__ import annotations

import dataclasses
import logging
from collections.abc import Callable, Mapping
from datetime import date, datetime
from decimal import Decimal
from typing import Any, Literal
from uuid import UUID

from aws_lambda_powertools import Logger, Metrics
from aws_lambda_powertools.event_handler import APIGatewayHttpResolver
from aws_lambda_powertools.utilities.typing import LambdaContext
from pydantic import BaseModel, TypeAdapter, ValidationError

from genjobs.cloudformation import CustomResourceResult, answer_custom_resource
from genjobs.db.outbox import take_webhooks_pending
from genjobs.errors import GenjobsError, error_document, validation_details
from genjobs.http.errors import gateway_error
from genjobs.http.fast_path import FastPath
from genjobs.http.requests import refuse_body

EventKind = Literal["http", "direct", "s3", "sqs", "schedule", "custom_resource", "unknown"]
Dispatch = Callable[[Any], Any]

_log = logging.getLogger("genjobs.entry")


def event_kind(event: Any) -> EventKind:
    if not isinstance(event, Mapping):
        return "unknown"
    if "requestContext" in event and "routeKey" in event:
        return "http"
    if "action" in event:
        return "direct"
    records = event.get("Records")
    if isinstance(records, list) and records and isinstance(records[0], Mapping) \
            and records[0].get("eventSource") == "aws:s3":
        return "s3"
    if isinstance(records, list) and records and isinstance(records[0], Mapping) \
            and records[0].get("eventSource") == "aws:sqs":
        return "sqs"
    if event.get("source") == "aws.events" or event.get("detail-type") == "Scheduled Event":
        return "schedule"
    if "RequestType" in event and "ResponseURL" in event:
        return "custom_resource"
    return "unknown"


def to_jsonable(value: Any) -> Any:
    """What a Lambda answer may hold: the runtime serializes it with plain `json`."""
    if isinstance(value, BaseModel):
        return value.model_dump(mode="json")
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return to_jsonable(dataclasses.asdict(value))
    if isinstance(value, list | tuple):
        return [to_jsonable(v) for v in value]
    if isinstance(value, dict):
        return {k: to_jsonable(v) for k, v in value.items()}
    if isinstance(value, UUID):
        return str(value)
    if isinstance(value, datetime | date):
        return value.isoformat()
    if isinstance(value, Decimal):
        return float(value)
    return value


def failure(code: str, message: str, details: dict[str, Any] | None = None) -> dict[str, Any]:
    return {"ok": False, "error": error_document(code, message, details)}


class Function:
    """A Lambda function of the stack; calling it handles one event."""

    def __init__(
        self,
        name: str,
        *,
        http: APIGatewayHttpResolver | None = None,
        actions: TypeAdapter[Any] | None = None,
        dispatch: Dispatch | None = None,
        s3: Callable[[dict[str, Any]], Any] | None = None,
        sqs: Callable[[dict[str, Any]], Any] | None = None,
        schedule: Callable[[dict[str, Any]], Any] | None = None,
        custom_resource: Callable[[dict[str, Any], LambdaContext], CustomResourceResult] | None = None,
        custom_resource_id: str | None = None,
        metrics: Metrics | None = None,
        propagate: Mapping[str, tuple[type[BaseException], ...]] | None = None,
    ) -> None:
        if (actions is None) != (dispatch is None):
            raise TypeError("actions and dispatch go together")
        self.name = name
        self.logger = Logger(service=f"genjobs-{name}")
        self.http = http
        # genjobs.http.resolver.Resolver registers its plain GET routes with a fast path (found once, here)
        fast_path = getattr(http, "fast_path", None)
        self.fast_path = fast_path if isinstance(fast_path, FastPath) else None
        self.actions = actions
        self.dispatch = dispatch
        self.s3 = s3
        self.sqs = sqs
        self.schedule = schedule
        self.custom_resource = custom_resource
        self.custom_resource_id = custom_resource_id or f"genjobs-{name}"
        self.metrics = metrics
        # action name -> the errors that leave the handler instead of becoming {"ok": false}
        self.propagate = dict(propagate or {})
        handle = self._handle
        if metrics is not None:
            handle = metrics.log_metrics(handle)
        self._handler = self.logger.inject_lambda_context(handle)

    def __call__(self, event: Any, context: LambdaContext) -> Any:
        return self._handler(event, context)

    def _handle(self, event: Any, context: LambdaContext) -> Any:
        take_webhooks_pending()  # a note left by an earlier event that raised is not this event's
        try:
            return self._handle_kind(event, context)
        finally:
            if take_webhooks_pending():
                self._request_webhook_delivery()

    def _request_webhook_delivery(self) -> None:
        from genjobs import dependencies
        from genjobs.ports import InvokeFailed

        deps = dependencies.get()
        try:
            deps.invoker.invoke_async(deps.settings.webhooks_function_name, {"action": "deliver_webhooks"})
        except InvokeFailed:
            self.logger.warning("webhook delivery not requested; the maintenance sweep will deliver",
                                exc_info=True)

    def _handle_kind(self, event: Any, context: LambdaContext) -> Any:
        kind = event_kind(event)
        if kind == "http" and self.http is not None:
            # the request id straight from the event: cheaper than a JMESPath query on every request
            self.logger.set_correlation_id(str((event.get("requestContext") or {}).get("requestId") or ""))
            refused = refuse_body(event)
            if refused is not None:
                return gateway_error(refused)
            if self.fast_path is not None:
                answered = self.fast_path.answer(event, context)
                if answered is not None:
                    return answered
            return self.http.resolve(event, context)
        if kind == "direct" and self.actions is not None:
            return self.invoke_direct(event)
        if kind == "s3" and self.s3 is not None:
            return self.s3(event)
        if kind == "sqs" and self.sqs is not None:
            return self.sqs(event)
        if kind == "schedule" and self.schedule is not None:
            return {"ok": True, "result": to_jsonable(self.schedule(event))}
        if kind == "custom_resource" and self.custom_resource is not None:
            produce = self.custom_resource
            return answer_custom_resource(event, lambda: produce(event, context),
                                          physical_resource_id=self.custom_resource_id)
        self.logger.warning("unsupported event", extra={"event_kind": kind, "function": self.name})
        return failure("UNSUPPORTED_EVENT", f"The {self.name} function does not take {kind} events.",
                       {"event_kind": kind})

    def invoke_direct(self, event: Any) -> dict[str, Any]:
        assert self.actions is not None and self.dispatch is not None
        try:
            action = self.actions.validate_python(event)
        except ValidationError as exc:
            return failure("VALIDATION_ERROR", "The invocation payload is not valid.",
                           {"errors": validation_details(exc.errors(include_url=False, include_input=False))})
        raised = self.propagate.get(str(getattr(action, "action", "")), ())
        try:
            result = self.dispatch(action)
        except raised as exc:
            self.logger.exception("direct invocation %s failed; raising so Lambda retries it",
                                  getattr(action, "action", "?"), extra={"error_type": type(exc).__name__})
            raise
        except GenjobsError as exc:
            return {"ok": False, "error": exc.to_dict()}
        except Exception:
            self.logger.exception("direct invocation failed")
            return failure("INTERNAL_ERROR", "An unexpected error occurred.")
        return {"ok": True, "result": to_jsonable(result)}
