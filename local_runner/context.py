"""The context object Lambda passes to a handler: the one fake of it, used by the local runner
(local_runner/lambdas.py), the tests (tests/support/events.py) and the benchmarks (bench/).

It has the attributes the Python runtime's context has
(https://docs.aws.amazon.com/lambda/latest/dg/python-context.html) and a real deadline: the remaining time
counts down from the function's timeout, set when the invocation starts. Standard library only, so the
cold-start benchmark can use it in a bare child process.
"""

from __future__ import annotations

import time
import uuid

REGION = "us-east-1"
ACCOUNT_ID = "123456789012"


class LambdaContext:
    """One invocation's context; make a new one for each invocation (the deadline starts now)."""

    def __init__(self, function_name: str, *, memory_mb: int = 128, timeout_seconds: float = 3.0,
                 request_id: str | None = None) -> None:
        self.function_name = function_name
        self.function_version = "$LATEST"
        self.invoked_function_arn = f"arn:aws:lambda:{REGION}:{ACCOUNT_ID}:function:{function_name}"
        self.memory_limit_in_mb = memory_mb
        self.aws_request_id = request_id or str(uuid.uuid4())
        self.log_group_name = f"/aws/lambda/{function_name}"
        self.log_stream_name = time.strftime("%Y/%m/%d") + f"/[$LATEST]{uuid.uuid4().hex}"
        self.identity = None
        self.client_context = None
        self.tenant_id = None
        self._deadline = time.monotonic() + timeout_seconds

    def get_remaining_time_in_millis(self) -> int:
        return max(0, int((self._deadline - time.monotonic()) * 1000))
