"""Adapters: the AWS implementations of the ports in `genjobs.ports` (Lambda, Bedrock, S3).

Every boto3 client is made by `aws_client`, with explicit timeouts and a bounded retry policy fitted to its
caller, so a missing network route fails in seconds instead of hanging on botocore's defaults (60 s connect
and read timeouts, retried).
"""

from __future__ import annotations

from typing import Any

# (connect timeout s, read timeout s, total attempts) per client.
#   lambda: an async invoke is answered at once (202); a start request must not wait long for it.
#   bedrock-runtime: InvokeModel renders an image synchronously (tens of seconds for 1024x1024).
#   s3: small objects (images up to a few MB).
#   bedrock: the control plane (GetFoundationModel), a small read, once a day per model.
TIMEOUTS: dict[str, tuple[float, float, int]] = {
    "lambda": (2.0, 5.0, 2),
    "bedrock-runtime": (3.0, 120.0, 2),
    "bedrock": (3.0, 10.0, 3),
    "s3": (2.0, 20.0, 3),
    "rds": (2.0, 5.0, 2),
    #   secretsmanager: the cursor keys (every 5 minutes per container) and the webhooks key (once).
    #   sqs: the delivery function hands signed requests to the sender outside the VPC.
    "secretsmanager": (2.0, 5.0, 2),
    "sqs": (2.0, 5.0, 3),
}


def aws_client(service: str, **kwargs: Any) -> Any:
    """A boto3 client with this project's timeouts and retries for `service` (imported lazily: a container
    that never calls AWS does not pay for boto3's import)."""
    import boto3
    from botocore.config import Config

    connect, read, attempts = TIMEOUTS[service]
    config = Config(connect_timeout=connect, read_timeout=read,
                    retries={"mode": "standard", "total_max_attempts": attempts})
    return boto3.client(service, config=config, **kwargs)  # type: ignore[call-overload]


class AwsAdapter:
    """An adapter over one AWS service: its boto3 client (given, e.g. a Stubber's, or made on first use)."""

    service: str

    def __init__(self, client: Any = None) -> None:
        self._client = client

    @property
    def client(self) -> Any:
        if self._client is None:
            self._client = aws_client(self.service)
        return self._client
