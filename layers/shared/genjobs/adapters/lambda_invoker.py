"""Invoking other Lambda functions through the Lambda API: asynchronously (`Event`) or waiting for the answer."""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

from genjobs.adapters import AwsAdapter
from genjobs.ports import InvokeFailed


class LambdaInvoker(AwsAdapter):
    service = "lambda"

    def _invoke(self, function_name: str, payload: Mapping[str, Any], invocation_type: str) -> Any:
        from botocore.exceptions import BotoCoreError, ClientError

        try:
            return self.client.invoke(FunctionName=function_name, InvocationType=invocation_type,
                                      Payload=json.dumps(payload).encode())
        except (BotoCoreError, ClientError) as exc:
            raise InvokeFailed(f"invoke of {function_name} ({invocation_type}) failed: {exc}") from exc

    def invoke_async(self, function_name: str, payload: Mapping[str, Any]) -> None:
        response = self._invoke(function_name, payload, "Event")
        if response.get("StatusCode") != 202:
            raise InvokeFailed(f"async invoke of {function_name} answered {response.get('StatusCode')}")

    def invoke_sync(self, function_name: str, payload: Mapping[str, Any]) -> Any:
        response = self._invoke(function_name, payload, "RequestResponse")
        if response.get("FunctionError"):
            raise InvokeFailed(f"{function_name} failed: {response['Payload'].read()[:500]!r}")
        return json.loads(response["Payload"].read() or b"null")
