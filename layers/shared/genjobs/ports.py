"""The ports of the house: what services need from the outside, as protocols and plain data.

Services depend on these only; the adapters that implement them for AWS live in `genjobs.adapters`
(Lambda, Bedrock, S3), and the local runner and the tests bring their own (in-process invokes, local
media, a frozen clock). Provider errors are classified once here: retryable ones (throttling, service
trouble) send the job back to the queue with backoff; the rest fail it at once.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, Literal, Protocol

# -- time ------------------------------------------------------------------------------------------------

Clock = Callable[[], datetime]


def utc_now() -> datetime:
    return datetime.now(UTC)


# -- keys ------------------------------------------------------------------------------------------------

MIN_CURSOR_KEY_BYTES = 32  # an HMAC-SHA256 key at least as long as the hash (RFC 2104 section 3)


@dataclass(frozen=True)
class CursorKeys:
    """The keys of the list cursors: the first signs, every one verifies (the previous key still verifies
    after a rotation, so the cursors of clients paging at that moment stay valid)."""

    keys: tuple[bytes, ...]

    def __post_init__(self) -> None:
        if not self.keys or any(len(k) < MIN_CURSOR_KEY_BYTES for k in self.keys):
            raise ValueError(f"cursor keys must be at least {MIN_CURSOR_KEY_BYTES} bytes each, and one at least")

    @property
    def signing(self) -> bytes:
        return self.keys[0]

    @classmethod
    def from_text(cls, *texts: str | None) -> CursorKeys:
        return cls(tuple(t.encode() for t in texts if t))


# A source of the current cursor keys (a rotation is picked up without a restart).
CursorKeySource = Callable[[], CursorKeys]


# -- other functions of the stack ------------------------------------------------------------------------


class InvokeFailed(Exception):
    """The invocation could not be handed to Lambda (throttled, no permission, network)."""


class FunctionInvoker(Protocol):
    def invoke_async(self, function_name: str, payload: Mapping[str, Any]) -> None: ...

    def invoke_sync(self, function_name: str, payload: Mapping[str, Any]) -> Any: ...


# -- media models and media storage ----------------------------------------------------------------------


class ProviderError(Exception):
    code: str = "PROVIDER_ERROR"
    retryable: bool = False

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


class ProviderThrottled(ProviderError):
    code = "PROVIDER_THROTTLED"
    retryable = True


class ProviderUnavailable(ProviderError):
    code = "PROVIDER_UNAVAILABLE"
    retryable = True


class ContentFiltered(ProviderError):
    code = "CONTENT_FILTERED"


class ProviderValidation(ProviderError):
    code = "PROVIDER_VALIDATION"


class ProviderFailed(ProviderError):
    code = "PROVIDER_FAILED"


@dataclass(frozen=True)
class ImageRequest:
    """One image. `family` picks the adapter (the request and response shapes of the model's family) and
    `region` the runtime client (None: the function's own region)."""

    model_id: str
    prompt: str
    seed: int
    width: int = 1024
    height: int = 1024
    parameters: dict[str, Any] = field(default_factory=dict)
    family: str = "nova_canvas"
    region: str | None = None


@dataclass(frozen=True)
class GeneratedImage:
    data: bytes
    content_type: str
    width: int
    height: int


@dataclass(frozen=True)
class VideoRequest:
    model_id: str
    prompt: str
    seed: int
    image: bytes | None
    image_format: Literal["png", "jpeg"]
    output_s3_uri: str
    client_request_token: str
    duration_seconds: int = 6
    parameters: dict[str, Any] = field(default_factory=dict)
    family: str = "nova_reel"
    region: str | None = None


@dataclass(frozen=True)
class VideoStatus:
    status: Literal["InProgress", "Completed", "Failed"]
    failure_message: str | None = None
    output_s3_uri: str | None = None
    # a Failed invocation's error code: CONTENT_FILTERED or PROVIDER_FAILED
    failure_code: str | None = None


class MediaProvider(Protocol):
    def generate_image(self, request: ImageRequest) -> GeneratedImage: ...

    def start_video(self, request: VideoRequest) -> str:
        """Start an asynchronous video generation; return its invocation ARN (or local id)."""
        ...

    def get_video_status(self, invocation_arn: str) -> VideoStatus: ...


# -- the model catalog (Bedrock's control plane) ---------------------------------------------------------


@dataclass(frozen=True)
class FoundationModelState:
    """What Bedrock says about a model now: `status` ACTIVE or LEGACY (GetFoundationModel's
    modelLifecycle), or GONE when Bedrock no longer knows the model (past its end of life)."""

    status: Literal["ACTIVE", "LEGACY", "GONE"]
    end_of_life: datetime | None = None
    legacy_since: datetime | None = None


class ModelCatalog(Protocol):
    def model_state(self, model_id: str, region: str) -> FoundationModelState: ...


@dataclass(frozen=True)
class StoredObject:
    bucket: str
    key: str
    url: str
    size_bytes: int
    content_type: str


class MediaStore(Protocol):
    bucket: str

    def put(self, key: str, data: bytes, content_type: str) -> StoredObject: ...

    def get(self, key: str) -> bytes: ...

    def url_for(self, key: str) -> str: ...

    def delete(self, keys: Sequence[str]) -> None:
        """Delete these objects; a key that is already gone is not an error (so a repeated delete is
        harmless). Raises MediaDeleteFailed when some could not be deleted."""
        ...


class MediaDeleteFailed(Exception):
    """Some objects could not be deleted (the keys and the store's reasons are in the message)."""

# -- webhooks --------------------------------------------------------------------------------------------


class SecretBox(Protocol):
    """Encrypts webhook signing secrets at rest (genjobs.adapters.webhooks.FernetSecretBox)."""

    def encrypt(self, plaintext: str) -> str: ...

    def decrypt(self, token: str) -> str: ...


@dataclass(frozen=True)
class WebhookRequest:
    """One signed delivery attempt, ready to post: what the delivery function hands the sender."""

    message_id: str
    attempt: int
    url: str
    headers: dict[str, str]
    body: str


@dataclass(frozen=True)
class WebhookResult:
    """What became of one attempt: a status code, or the error that stopped it before one."""

    message_id: str
    attempt: int
    status_code: int | None
    duration_ms: int
    error: str | None = None
    response_body: str | None = None

    @property
    def delivered(self) -> bool:
        return self.status_code is not None and 200 <= self.status_code < 300


class WebhookSender(Protocol):
    """Posts one signed request (SSRF checks, timeout, no redirects): genjobs.adapters.webhooks.HttpSender."""

    def send(self, request: WebhookRequest) -> WebhookResult: ...


class WebhookQueue(Protocol):
    """Hands signed requests to the sender outside the VPC (AWS: SQS)."""

    def enqueue(self, requests: list[WebhookRequest]) -> None: ...
