"""CloudFormation custom resource responses (the migrate function runs as one on every deploy)."""

from __future__ import annotations

import json
import logging
import urllib.request
from collections.abc import Mapping
from typing import Any

logger = logging.getLogger("genjobs.custom_resource")


def build_response(event: Mapping[str, Any], *, success: bool, reason: str, data: Mapping[str, Any],
                   physical_resource_id: str) -> dict[str, Any]:
    return {
        "Status": "SUCCESS" if success else "FAILED",
        "Reason": reason[:3000],
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
