"""Deterministic local media for `make run` and the tests (never shipped in the layer): PNG images drawn
from the seed, small placeholder MP4 files, stored under a directory, and S3-shaped completion events for videos."""

from __future__ import annotations

import hashlib
import struct
import threading
from collections.abc import Callable, Sequence
from pathlib import Path
from urllib.parse import urlparse

from genjobs.adapters.bedrock import IMAGE_FAMILIES, VIDEO_FAMILIES
from genjobs.media.png import encode_png
from genjobs.ports import (
    FoundationModelState,
    GeneratedImage,
    ImageRequest,
    ProviderFailed,
    ProviderValidation,
    StoredObject,
    VideoRequest,
    VideoStatus,
)

LOCAL_IMAGE_SIZE = 128


def render_png(seed: int, size: int = LOCAL_IMAGE_SIZE) -> bytes:
    """A small PNG whose colours and shape depend only on the seed (same seed, same bytes)."""
    digest = hashlib.sha256(str(seed).encode()).digest()
    background = digest[0:3]
    body = digest[3:6]
    radius = size // 4 + digest[6] % (size // 6)
    center = size // 2
    rows = bytearray()
    for y in range(size):
        for x in range(size):
            inside = (x - center) ** 2 + (y - center - size // 8) ** 2 <= radius * radius
            head = (x - center) ** 2 + (y - center + radius) ** 2 <= (radius // 2) ** 2
            rows.extend(body if inside or head else background)
    return encode_png(size, size, rows)


# A real H.264 MP4 (64x36, half a second, 2.5 KB), recorded once from a canvas with Chromium's MediaRecorder
# (video/mp4;codecs=avc1.42E01E; the recipe is tests/e2e/console/test_console.py::record_tiny_mp4), so a browser
# can play what the local provider "generates".
_PLACEHOLDER_MP4 = Path(__file__).with_name("assets") / "placeholder.mp4"


def placeholder_mp4(label: str) -> bytes:
    """A tiny playable MP4, with the label in a trailing top-level `free` box (players skip it) so each
    state's file is distinct."""
    payload = f"genjobs placeholder video: {label}".encode()
    return _PLACEHOLDER_MP4.read_bytes() + struct.pack(">I", len(payload) + 8) + b"free" + payload


class LocalMediaStore:
    def __init__(self, root: Path, *, bucket: str, base_url: str) -> None:
        self.root = root
        self.bucket = bucket
        self._base_url = base_url.rstrip("/")

    def path_for(self, key: str) -> Path:
        path = (self.root / key).resolve()
        if self.root.resolve() not in path.parents:
            raise ValueError(f"key {key!r} escapes the media directory")
        return path

    def url_for(self, key: str) -> str:
        return f"{self._base_url}/{key}"

    def put(self, key: str, data: bytes, content_type: str) -> StoredObject:
        path = self.path_for(key)
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_suffix(path.suffix + ".tmp")
        tmp.write_bytes(data)
        tmp.replace(path)
        return StoredObject(bucket=self.bucket, key=key, url=self.url_for(key), size_bytes=len(data),
                            content_type=content_type)

    def get(self, key: str) -> bytes:
        return self.path_for(key).read_bytes()

    def delete(self, keys: Sequence[str]) -> None:
        for key in keys:
            self.path_for(key).unlink(missing_ok=True)  # like S3: a missing key counts as deleted


ObjectCreatedCallback = Callable[[str, str, int], None]
Scheduler = Callable[[float, Callable[[], None]], None]


def _thread_scheduler(delay_seconds: float, action: Callable[[], None]) -> None:
    timer = threading.Timer(delay_seconds, action)
    timer.daemon = True
    timer.start()


class LocalMediaProvider:
    """Images at once; videos written after `delay_ms`, then announced like S3 ObjectCreated would be."""

    def __init__(
        self,
        store: LocalMediaStore,
        *,
        on_object_created: ObjectCreatedCallback | None = None,
        delay_ms: int = 0,
        schedule: Scheduler = _thread_scheduler,
    ) -> None:
        self.store = store
        self.on_object_created = on_object_created
        self.delay_ms = delay_ms
        self.schedule = schedule
        self._videos: dict[str, VideoStatus] = {}
        self._lock = threading.Lock()

    def generate_image(self, request: ImageRequest) -> GeneratedImage:
        # every model of a family the Bedrock adapter serves answers here, so `make run` works with any
        # configured model; a family it does not know is refused as Bedrock's adapter would refuse it
        if request.family not in IMAGE_FAMILIES:
            raise ProviderValidation(f"no image adapter for the model family {request.family!r}")
        if "FAIL_LOCAL_PROVIDER" in request.prompt:
            raise ProviderFailed("the local provider was asked to fail")
        return GeneratedImage(data=render_png(request.seed), content_type="image/png",
                              width=LOCAL_IMAGE_SIZE, height=LOCAL_IMAGE_SIZE)

    def start_video(self, request: VideoRequest) -> str:
        if request.family not in VIDEO_FAMILIES:
            raise ProviderValidation(f"no video adapter for the model family {request.family!r}")
        invocation_id = hashlib.sha256(request.client_request_token.encode()).hexdigest()[:12]
        arn = f"arn:local:bedrock:async-invoke/{invocation_id}"
        parsed = urlparse(request.output_s3_uri)
        key = f"{parsed.path.lstrip('/').rstrip('/')}/{invocation_id}/output.mp4"
        with self._lock:
            self._videos[arn] = VideoStatus(status="InProgress")

        def finish() -> None:
            stored = self.store.put(key, placeholder_mp4(request.prompt[:80]), "video/mp4")
            with self._lock:
                self._videos[arn] = VideoStatus(status="Completed", output_s3_uri=request.output_s3_uri)
            if self.on_object_created is not None:
                self.on_object_created(stored.bucket, stored.key, stored.size_bytes)

        self.schedule(self.delay_ms / 1000.0, finish)
        return arn

    def get_video_status(self, invocation_arn: str) -> VideoStatus:
        with self._lock:
            return self._videos.get(invocation_arn, VideoStatus(status="Failed", failure_message="unknown invocation"))


class LocalModelCatalog:
    """Bedrock's control plane offline: every model is ACTIVE (the lifecycle check runs locally without AWS)."""

    def model_state(self, model_id: str, region: str) -> FoundationModelState:
        return FoundationModelState(status="ACTIVE")
