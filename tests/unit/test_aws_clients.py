"""Fault 10 of issue 12: every boto3 client the adapters make has explicit connect/read timeouts and a bounded
retry policy (botocore's defaults are 60 s each, retried), fitted to its caller."""

from __future__ import annotations

import pytest
from genjobs.adapters import TIMEOUTS, AwsAdapter, aws_client
from genjobs.adapters.lambda_invoker import LambdaInvoker
from genjobs.adapters.s3 import S3MediaStore
from genjobs.adapters.secrets import SecretsManagerCursorKeys

ADAPTERS: list[type[AwsAdapter]] = [LambdaInvoker, S3MediaStore, SecretsManagerCursorKeys]


@pytest.mark.parametrize("adapter", ADAPTERS, ids=lambda a: a.__name__)
def test_every_adapter_has_a_timeout_policy(adapter: type[AwsAdapter]) -> None:
    assert adapter.service in TIMEOUTS


def test_bedrock_has_a_timeout_policy() -> None:
    # the Bedrock provider makes one runtime client per region, each through aws_client
    assert {"bedrock-runtime", "bedrock"} & set(TIMEOUTS)


@pytest.mark.parametrize("service", sorted(TIMEOUTS))
def test_clients_get_explicit_timeouts_and_bounded_retries(service: str) -> None:
    # Given the policy of a service, When its client is made, Then the client carries it (not botocore's defaults)
    connect, read, attempts = TIMEOUTS[service]
    config = aws_client(service, region_name="us-east-1").meta.config
    assert (config.connect_timeout, config.read_timeout) == (connect, read)
    assert config.retries["total_max_attempts"] == attempts and config.retries["mode"] == "standard"
    assert connect <= 3 and attempts <= 3  # a missing network route fails in seconds, not minutes
