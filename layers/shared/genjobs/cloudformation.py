"""CloudFormation custom resources (the migrate function runs as one on every deploy): the response
CloudFormation waits for, always sent, SUCCESS or FAILED with the reason, whatever went wrong."""

from __future__ import annotations

import json
import logging
import urllib.request
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

logger = logging.getLogger("genjobs.cloudformation")

# CloudFormation shows at most this much of a reason (the response body itself is limited to 4 KB).
MAX_REASON = 3000


@dataclass(frozen=True)
class CustomResourceResult:
    reason: str
    data: dict[str, Any] = field(default_factory=dict)
    physical_resource_id: str | None = None


def build_response(event: Mapping[str, Any], *, success: bool, reason: str, data: Mapping[str, Any],
                   physical_resource_id: str) -> dict[str, Any]:
    return {
        "Status": "SUCCESS" if success else "FAILED",
        "Reason": reason[:MAX_REASON],
        "PhysicalResourceId": physical_resource_id,
        "StackId": event["StackId"],
        "RequestId": event["RequestId"],
        "LogicalResourceId": event["LogicalResourceId"],
        "Data": dict(data),
    }


def send_response(event: Mapping[str, Any], response: Mapping[str, Any], timeout: float = 10.0) -> None:
    """PUT the result to the pre-signed S3 URL CloudFormation gave us; the stack waits for it."""
    url = str(event["ResponseURL"])
    if not url.startswith("https://"):
        raise ValueError("ResponseURL must be https")
    body = json.dumps(response).encode("utf-8")
    request = urllib.request.Request(  # noqa: S310 - scheme checked above
        url, data=body, method="PUT", headers={"Content-Type": "", "Content-Length": str(len(body))}
    )
    with urllib.request.urlopen(request, timeout=timeout) as reply:  # noqa: S310
        logger.info("custom resource response sent: %s", reply.status)


def answer_custom_resource(event: Mapping[str, Any], produce: Callable[[], CustomResourceResult], *,
                           physical_resource_id: str,
                           send: Callable[[Mapping[str, Any], Mapping[str, Any]], None] = send_response
                           ) -> dict[str, Any]:
    """Run `produce` and answer CloudFormation with its result; any exception becomes FAILED with the
    exception's message as the reason (and its traceback in the logs). The resource keeps the physical id
    CloudFormation knows it by, else `physical_resource_id`."""
    physical_id = str(event.get("PhysicalResourceId") or physical_resource_id)
    try:
        result = produce()
        response = build_response(event, success=True, reason=result.reason, data=result.data,
                                  physical_resource_id=result.physical_resource_id or physical_id)
    except Exception as exc:
        logger.exception("custom resource %s failed", event.get("RequestType"))
        message = getattr(exc, "message", None) or str(exc) or type(exc).__name__
        response = build_response(event, success=False, reason=f"{type(exc).__name__}: {message}", data={},
                                  physical_resource_id=physical_id)
    send(event, response)
    return response
