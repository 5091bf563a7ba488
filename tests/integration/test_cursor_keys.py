"""The list cursors' keys from Secrets Manager (moto): AWSCURRENT signs, AWSPREVIOUS still verifies after a
rotation, and the keys are cached per container for a while."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import boto3
import pytest
from genjobs.adapters.secrets import SecretsManagerCursorKeys
from moto import mock_aws

FIRST = "first-cursor-key-0123456789abcdefghij"
SECOND = "second-cursor-key-0123456789abcdefghi"


@pytest.fixture
def secrets() -> Iterator[Any]:
    with mock_aws():
        yield boto3.client("secretsmanager", region_name="us-east-1")


def test_keys_follow_the_secret_through_a_rotation_after_the_cache_expires(secrets: Any) -> None:
    # Given a secret that was never rotated, read through a 300 s cache
    arn = secrets.create_secret(Name="genjobs-cursor-key", SecretString=FIRST)["ARN"]
    now = [0.0]
    source = SecretsManagerCursorKeys(arn, client=secrets, max_age=300, monotonic=lambda: now[0])

    # Then its only key signs
    assert source().keys == (FIRST.encode(),)

    # When a new value is put (AWSCURRENT moves to it, AWSPREVIOUS to the first value)
    secrets.put_secret_value(SecretId=arn, SecretString=SECOND)

    # Then the container keeps its cached keys until they are 300 s old, then signs with the new key and still
    # verifies with the previous one
    now[0] = 299.0
    assert source().keys == (FIRST.encode(),)
    now[0] = 300.0
    assert source().keys == (SECOND.encode(), FIRST.encode())
    assert source().signing == SECOND.encode()


def test_a_secret_shorter_than_32_bytes_is_refused(secrets: Any) -> None:
    arn = secrets.create_secret(Name="short", SecretString="too-short")["ARN"]
    with pytest.raises(ValueError, match="at least 32 bytes"):
        SecretsManagerCursorKeys(arn, client=secrets)()
