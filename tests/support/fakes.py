"""Test doubles at the AWS boundary and for time."""

from __future__ import annotations

import base64
import io
import json
import threading
from collections.abc import Mapping
from datetime import UTC, datetime, timedelta
from typing import Any

import boto3
from botocore.response import StreamingBody
from botocore.stub import ANY, Stubber

from local_runner.media import render_png

MEDIA_BUCKET = "genjobs-media-test"  # the bucket of the S3 fakes (moto) and of the stores built on them


class FrozenClock:
    """A clock that only moves when told to."""

    def __init__(self, start: datetime | None = None) -> None:
        self.now = start or datetime(2026, 11, 26, 12, 0, tzinfo=UTC)
        self._lock = threading.Lock()

    def __call__(self) -> datetime:
        with self._lock:
            return self.now

    def advance(self, delta: timedelta) -> None:
        with self._lock:
            self.now += delta


class RecordingInvoker:
    """A FunctionInvoker that records what would have been invoked (optionally failing)."""

    def __init__(self, fail: bool = False) -> None:
        self.calls: list[tuple[str, dict[str, Any]]] = []
        self.fail = fail
        self._lock = threading.Lock()

    def invoke_async(self, function_name: str, payload: Mapping[str, Any]) -> None:
        from genjobs.ports import InvokeFailed

        if self.fail:
            raise InvokeFailed("simulated: Lambda throttled the invoke")
        with self._lock:
            self.calls.append((function_name, dict(payload)))

    def invoke_sync(self, function_name: str, payload: Mapping[str, Any]) -> Any:
        self.invoke_async(function_name, payload)
        return {"ok": True}


def bedrock_client() -> Any:
    return boto3.client("bedrock-runtime", region_name="us-east-1")


DEFAULT_IMAGE_MODEL = "stability.stable-image-core-v1:1"  # the seeded default (sql/040)
DEFAULT_VIDEO_MODEL = "luma.ray-v2:0"


def json_body(payload: Any) -> dict[str, Any]:
    """An InvokeModel answer: its JSON body as the streaming body botocore hands back."""
    data = json.dumps(payload).encode()
    return {"body": StreamingBody(io.BytesIO(data), len(data)), "contentType": "application/json"}


def image_payload(seed: int, family: str = "stability_image") -> dict[str, Any]:
    """The answer body of a model family, as its Bedrock page shows it: Stability AI {seeds, finish_reasons,
    images}; Nova Canvas / Titan {images, error}."""
    image = base64.b64encode(render_png(seed, 16)).decode()
    if family == "stability_image":
        return {"seeds": [seed], "finish_reasons": [None], "images": [image]}
    return {"images": [image], "error": None}


def image_response(seed: int, family: str = "stability_image") -> dict[str, Any]:
    return json_body(image_payload(seed, family))


def stub_images(stubber: Stubber, count: int, model_id: str = DEFAULT_IMAGE_MODEL,
                family: str = "stability_image") -> None:
    for index in range(count):
        stubber.add_response(
            "invoke_model", image_response(index, family),
            {"modelId": model_id, "body": ANY, "contentType": "application/json", "accept": "application/json"},
        )


def stub_image_error(stubber: Stubber, code: str, message: str) -> None:
    stubber.add_client_error("invoke_model", service_error_code=code, service_message=message,
                             http_status_code=400 if code == "ValidationException" else 429)


class LambdaStub:
    """botocore's Stubber on the Lambda client the generation function uses to dispatch the worker."""

    def __init__(self) -> None:
        self.client = boto3.client("lambda", region_name="us-east-1")
        self.stubber = Stubber(self.client)

    def expect_dispatch(self, times: int = 1, function_name: str = "genjobs-worker") -> None:
        for _ in range(times):
            self.stubber.add_response("invoke", {"StatusCode": 202},
                                      {"FunctionName": function_name, "InvocationType": "Event", "Payload": ANY})

    def fail_dispatch(self) -> None:
        self.stubber.add_client_error("invoke", service_error_code="TooManyRequestsException",
                                      service_message="Rate exceeded", http_status_code=429)


class CountingS3:
    """A boto3 S3 client (moto's) that counts the DeleteObjects requests and their sizes."""

    def __init__(self, client: Any) -> None:
        self._client = client
        self.delete_batches: list[int] = []

    def __getattr__(self, name: str) -> Any:
        return getattr(self._client, name)

    def delete_objects(self, **kwargs: Any) -> Any:
        self.delete_batches.append(len(kwargs["Delete"]["Objects"]))
        return self._client.delete_objects(**kwargs)


class FailingDeletes:
    """A media store whose deletes fail (S3 answering errors for the keys), wrapping a real one."""

    def __init__(self, store: Any) -> None:
        self._store = store
        self.bucket = store.bucket

    def __getattr__(self, name: str) -> Any:
        return getattr(self._store, name)

    def delete(self, keys: Any) -> None:
        from genjobs.ports import MediaDeleteFailed

        raise MediaDeleteFailed(f"{len(keys)} object(s) not deleted: AccessDenied")
