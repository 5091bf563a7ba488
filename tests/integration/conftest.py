"""Fixtures of the integration tests: S3 (moto) and Bedrock (botocore Stubber) at the AWS boundary, under the
real adapters."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import boto3
import pytest
from botocore.stub import Stubber
from genjobs.adapters.bedrock import BedrockMediaProvider
from genjobs.adapters.s3 import S3MediaStore
from moto import mock_aws

from tests.support.fakes import MEDIA_BUCKET, bedrock_client


@pytest.fixture
def s3() -> Iterator[Any]:
    """A moto S3 client with the media bucket created."""
    with mock_aws():
        client = boto3.client("s3", region_name="us-east-1")
        client.create_bucket(Bucket=MEDIA_BUCKET)
        yield client


@pytest.fixture
def s3_store(s3: Any) -> S3MediaStore:
    """The real S3 media store on the moto bucket."""
    return S3MediaStore(MEDIA_BUCKET, client=s3)


@pytest.fixture
def bedrock() -> Iterator[tuple[BedrockMediaProvider, Stubber]]:
    """The real Bedrock provider on a stubbed client, and the stubber to queue its answers on."""
    client = bedrock_client()
    with Stubber(client) as stubber:
        yield BedrockMediaProvider(client), stubber


@pytest.fixture
def secret_box() -> Any:
    """The real secret box (Fernet) under a test key."""
    from genjobs.adapters.webhooks import FernetSecretBox

    from tests.support.webhooks import KEY

    return FernetSecretBox(KEY)


@pytest.fixture
def receiver() -> Iterator[Any]:
    """A real HTTP receiver on 127.0.0.1 recording every delivery."""
    from tests.support.webhooks import running_receiver

    with running_receiver() as running:
        yield running
