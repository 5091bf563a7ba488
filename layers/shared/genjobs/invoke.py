"""Invoking other Lambda functions: asynchronously (`Event`) or waiting for the answer.

Services depend on the `FunctionInvoker` protocol; in AWS it is `LambdaInvoker` (boto3, created lazily);
the local runner supplies an in-process implementation with the same interface.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Mapping
from typing import Any, Protocol

logger = logging.getLogger("genjobs.invoke")


class InvokeFailed(Exception):
    """The invocation could not be handed to Lambda (throttled, no permission, network)."""


class FunctionInvoker(Protocol):
    def invoke_async(self, function_name: str, payload: Mapping[str, Any]) -> None: ...

    def invoke_sync(self, function_name: str, payload: Mapping[str, Any]) -> Any: ...


class LambdaInvoker:
    def __init__(self, client: Any = None) -> None:
        self._client = client

    @property
    def client(self) -> Any:
        if self._client is None:
            import boto3

            self._client = boto3.client("lambda")
        return self._client

    def invoke_async(self, function_name: str, payload: Mapping[str, Any]) -> None:
        from botocore.exceptions import BotoCoreError, ClientError

        try:
            response = self.client.invoke(
                FunctionName=function_name, InvocationType="Event", Payload=json.dumps(payload).encode()
            )
        except (BotoCoreError, ClientError) as exc:
            raise InvokeFailed(f"async invoke of {function_name} failed: {exc}") from exc
        if response.get("StatusCode") != 202:
            raise InvokeFailed(f"async invoke of {function_name} answered {response.get('StatusCode')}")

    def invoke_sync(self, function_name: str, payload: Mapping[str, Any]) -> Any:
        from botocore.exceptions import BotoCoreError, ClientError

        try:
            response = self.client.invoke(
                FunctionName=function_name, InvocationType="RequestResponse", Payload=json.dumps(payload).encode()
            )
        except (BotoCoreError, ClientError) as exc:
            raise InvokeFailed(f"invoke of {function_name} failed: {exc}") from exc
        if response.get("FunctionError"):
            raise InvokeFailed(f"{function_name} failed: {response['Payload'].read()[:500]!r}")
        return json.loads(response["Payload"].read() or b"null")
