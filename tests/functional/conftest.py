from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import boto3
import pytest
from botocore.stub import ANY, Stubber
from genjobs import dependencies
from genjobs.adapters.lambda_invoker import LambdaInvoker
from genjobs.db import Database

import functions.approval.app as approval_app
import functions.generation.app as generation_app
import functions.limits.app as limits_app
import functions.progress.app as progress_app
from tests.support.merchants import MerchantClient

HANDLERS: dict[str, Any] = {
    "generation": generation_app,
    "limits": limits_app,
    "progress": progress_app,
    "approval": approval_app,
}


class LambdaStub:
    """botocore's Stubber on the Lambda client the generation function uses to dispatch the worker."""

    def __init__(self) -> None:
        self.client = boto3.client("lambda", region_name="us-east-1")
        self.stubber = Stubber(self.client)

    def expect_dispatch(self, times: int = 1, function_name: str = "genjobs-generation") -> None:
        for _ in range(times):
            self.stubber.add_response("invoke", {"StatusCode": 202},
                                      {"FunctionName": function_name, "InvocationType": "Event", "Payload": ANY})

    def fail_dispatch(self) -> None:
        self.stubber.add_client_error("invoke", service_error_code="TooManyRequestsException",
                                      service_message="Rate exceeded", http_status_code=429)


@pytest.fixture
def lambda_stub(db: Database) -> Iterator[LambdaStub]:
    stub = LambdaStub()
    stub.stubber.activate()
    dependencies.override(invoker=LambdaInvoker(stub.client))
    yield stub
    stub.stubber.deactivate()
    dependencies.reset()


@pytest.fixture
def acme(db: Database, lambda_stub: LambdaStub) -> MerchantClient:
    return MerchantClient(HANDLERS, "acme")


@pytest.fixture
def globex(db: Database, lambda_stub: LambdaStub) -> MerchantClient:
    return MerchantClient(HANDLERS, "globex")
