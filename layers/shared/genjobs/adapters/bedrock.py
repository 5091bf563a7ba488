"""Amazon Bedrock as the media provider: one adapter per model family behind the `MediaProvider` port, and a
runtime client per region.

Families (which one serves a model is its registry row's `family`, sql/040):
  images, InvokeModel (one image per call):
    nova_canvas, titan_image  TEXT_IMAGE with imageGenerationConfig (seed 0..858993459); answer {images, error}
        (the shape this adapter used before the registry; both models are disabled rows today, sql/040)
        https://docs.aws.amazon.com/bedrock/latest/userguide/model-parameters-titan-image.html
    stability_image           Stable Image Core / Ultra, SD3.5 Large: {prompt, aspect_ratio, seed, output_format}
        (seed 0..4294967294); answer {seeds, finish_reasons, images}: a non-null finish reason is the
        content filter ("Filter reason: prompt" / "output image" / "input image") or "Inference error"
        https://docs.aws.amazon.com/bedrock/latest/userguide/model-parameters-diffusion-stable-ultra-text-image-request-response.html
        (read 2026-12-01)
  videos, StartAsyncInvoke + GetAsyncInvoke, the MP4 written by Bedrock under the output S3 URI:
    nova_reel                 TEXT_VIDEO with the keyframe in textToVideoParams.images, videoGenerationConfig
        {durationSeconds, fps, dimension, seed}; the keyframe must be exactly the dimension (1280x720)
        (the shape this adapter used before the registry; Nova Reel is past its EOL date, sql/040)
    luma_ray                  {prompt, aspect_ratio, loop, duration "5s"|"9s", resolution "540p"|"720p"} and the
        first keyframe as keyframes.frame0 (image-to-video)
        https://docs.aws.amazon.com/bedrock/latest/userguide/model-parameters-luma.html (read 2026-12-01): its
        image-to-video example sends "keyframes": {"frame0": {"type": "image", "source": {"type": "base64",
        "media_type": "image/jpeg", "data": ...}}}; images JPEG or PNG, 512x512 to 4096x4096
Every family's default parameters name the clip length `durationSeconds` (the cost rules of sql/013 read it);
the Luma adapter turns it into the model's "5s".

Errors are mapped once (`classify_client_error`): throttling and service trouble are retryable, a content
filter is CONTENT_FILTERED, anything else the model refuses is PROVIDER_VALIDATION.
"""

from __future__ import annotations

import base64
import json
import threading
from collections.abc import Callable
from typing import Any

from genjobs.adapters import aws_client
from genjobs.media.png import png_size
from genjobs.ports import (
    ContentFiltered,
    GeneratedImage,
    ImageRequest,
    ProviderError,
    ProviderFailed,
    ProviderThrottled,
    ProviderUnavailable,
    ProviderValidation,
    VideoRequest,
    VideoStatus,
)

_THROTTLED = {"ThrottlingException", "TooManyRequestsException", "ServiceQuotaExceededException"}
_UNAVAILABLE = {"ServiceUnavailableException", "InternalServerException", "ModelTimeoutException",
                "ModelNotReadyException", "ModelErrorException"}
_CONTENT_FILTER_HINTS = ("content filter", "filter reason", "blocked", "responsible ai", "safety", "moderation")

# Stability AI: "Filter reason: ..." is the content filter; "Inference error" is the model's own trouble
STABILITY_FILTER_PREFIX = "filter reason"
MAX_STABILITY_SEED = 4_294_967_294


def is_content_filter(message: str) -> bool:
    return any(hint in message.lower() for hint in _CONTENT_FILTER_HINTS)


def classify_client_error(code: str, message: str) -> ProviderError:
    if code in _THROTTLED:
        return ProviderThrottled(message)
    if code in _UNAVAILABLE:
        return ProviderUnavailable(message)
    if code == "ValidationException" and is_content_filter(message):
        return ContentFiltered(message)
    return ProviderValidation(f"{code}: {message}")


def region_of_arn(arn: str) -> str | None:
    """arn:aws:bedrock:<region>:<account>:async-invoke/<id> -> <region>."""
    parts = arn.split(":")
    return parts[3] or None if len(parts) > 5 and parts[0] == "arn" else None


# -- images ----------------------------------------------------------------------------------------------


def nova_image_body(request: ImageRequest) -> dict[str, Any]:
    """The TEXT_IMAGE request shared by Nova Canvas and Titan Image Generator v2 (one image per seed)."""
    config = {
        "numberOfImages": 1,
        "width": request.width,
        "height": request.height,
        "seed": request.seed,
        **{k: v for k, v in request.parameters.items() if k in ("cfgScale", "quality")},
    }
    return {
        "taskType": "TEXT_IMAGE",
        "textToImageParams": {"text": request.prompt[:1024]},
        "imageGenerationConfig": config,
    }


image_request_body = nova_image_body  # the name callers used before the families


def nova_image_answer(payload: dict[str, Any], request: ImageRequest) -> GeneratedImage:
    if payload.get("error"):
        message = str(payload["error"])
        if is_content_filter(message):
            raise ContentFiltered(message)
        raise ProviderFailed(message)
    images = payload.get("images") or []
    if not images:
        raise ProviderFailed("the model returned no image")
    return GeneratedImage(data=base64.b64decode(images[0]), content_type="image/png", width=request.width,
                          height=request.height)


def stability_image_body(request: ImageRequest) -> dict[str, Any]:
    """Stable Image Core / Ultra and SD3.5 Large text-to-image: one image per call; the size follows from
    `aspect_ratio` (the models take no width/height)."""
    body: dict[str, Any] = {
        "prompt": request.prompt[:10_000],
        "aspect_ratio": str(request.parameters.get("aspect_ratio", "1:1")),
        "seed": request.seed % (MAX_STABILITY_SEED + 1),
        "output_format": str(request.parameters.get("output_format", "png")),
    }
    if request.parameters.get("negative_prompt"):
        body["negative_prompt"] = str(request.parameters["negative_prompt"])[:10_000]
    return body


def stability_image_answer(payload: dict[str, Any], request: ImageRequest) -> GeneratedImage:
    reasons = [str(r) for r in (payload.get("finish_reasons") or []) if r is not None]
    if reasons:
        message = "; ".join(reasons)
        if any(r.lower().startswith(STABILITY_FILTER_PREFIX) for r in reasons):
            raise ContentFiltered(message)
        raise ProviderUnavailable(message)  # "Inference error": the model's trouble, worth a retry
    images = payload.get("images") or []
    if not images:
        raise ProviderFailed("the model returned no image")
    data = base64.b64decode(images[0])
    fmt = str(request.parameters.get("output_format", "png"))
    # the size is the model's choice for the aspect ratio: read it from the PNG rather than assume it
    size = png_size(data)
    width, height = size if size is not None else (request.width, request.height)
    return GeneratedImage(data=data, content_type="image/jpeg" if fmt == "jpeg" else "image/png", width=width,
                          height=height)


ImageFamily = tuple[Callable[[ImageRequest], dict[str, Any]], Callable[[dict[str, Any], ImageRequest],
                                                                       GeneratedImage]]
IMAGE_FAMILIES: dict[str, ImageFamily] = {
    "nova_canvas": (nova_image_body, nova_image_answer),
    "titan_image": (nova_image_body, nova_image_answer),
    "stability_image": (stability_image_body, stability_image_answer),
}

# -- videos ----------------------------------------------------------------------------------------------


def nova_reel_input(request: VideoRequest) -> dict[str, Any]:
    params: dict[str, Any] = {"text": request.prompt[:512]}
    if request.image is not None:
        params["images"] = [{"format": request.image_format,
                             "source": {"bytes": base64.b64encode(request.image).decode("ascii")}}]
    return {
        "taskType": "TEXT_VIDEO",
        "textToVideoParams": params,
        "videoGenerationConfig": {
            "durationSeconds": request.duration_seconds,
            "fps": int(request.parameters.get("fps", 24)),
            "dimension": str(request.parameters.get("dimension", "1280x720")),
            "seed": request.seed,
        },
    }


video_request_input = nova_reel_input  # the name callers used before the families


def luma_ray_input(request: VideoRequest) -> dict[str, Any]:
    """Luma Ray2: durations are "5s" or "9s" and resolutions "540p" or "720p" (the row's parameters choose);
    the approved image is the first keyframe."""
    model_input: dict[str, Any] = {
        "prompt": request.prompt[:5000],
        "aspect_ratio": str(request.parameters.get("aspect_ratio", "16:9")),
        "loop": bool(request.parameters.get("loop", False)),
        "duration": f"{request.duration_seconds}s",
        "resolution": str(request.parameters.get("resolution", "720p")),
    }
    if request.image is not None:
        model_input["keyframes"] = {"frame0": {"type": "image", "source": {
            "type": "base64", "media_type": f"image/{request.image_format}",
            "data": base64.b64encode(request.image).decode("ascii")}}}
    return model_input


VIDEO_FAMILIES: dict[str, Callable[[VideoRequest], dict[str, Any]]] = {
    "nova_reel": nova_reel_input,
    "luma_ray": luma_ray_input,
}


def video_failure_code(message: str | None) -> str:
    """The error code of a failed async invocation (GetAsyncInvoke status Failed and its failureMessage)."""
    return "CONTENT_FILTERED" if message and is_content_filter(message) else "PROVIDER_FAILED"


class BedrockMediaProvider:
    """Routes each request to its family's adapter on the runtime client of the model's region.

    `client`, when given (a Stubber's in the tests), serves every region; otherwise one client per region is
    made on first use and kept for the container's life."""

    service = "bedrock-runtime"

    def __init__(self, client: Any = None, *, region: str | None = None) -> None:
        self._given = client
        self._default_region = region
        self._clients: dict[str | None, Any] = {}
        self._lock = threading.Lock()

    @property
    def client(self) -> Any:
        return self.client_for(None)

    def client_for(self, region: str | None) -> Any:
        if self._given is not None:
            return self._given
        region = region or self._default_region
        with self._lock:
            if region not in self._clients:
                self._clients[region] = aws_client(self.service, **({"region_name": region} if region else {}))
            return self._clients[region]

    def _call(self, region: str | None, operation: str, **kwargs: Any) -> Any:
        from botocore.exceptions import BotoCoreError, ClientError

        try:
            return getattr(self.client_for(region), operation)(**kwargs)
        except ClientError as exc:
            error = exc.response.get("Error", {})
            raise classify_client_error(str(error.get("Code", "")), str(error.get("Message", ""))) from exc
        except BotoCoreError as exc:
            raise ProviderUnavailable(str(exc)) from exc

    def generate_image(self, request: ImageRequest) -> GeneratedImage:
        family = IMAGE_FAMILIES.get(request.family)
        if family is None:
            raise ProviderValidation(f"no image adapter for the model family {request.family!r}")
        make_body, read_answer = family
        response = self._call(
            request.region, "invoke_model", modelId=request.model_id, body=json.dumps(make_body(request)),
            contentType="application/json", accept="application/json",
        )
        return read_answer(json.loads(response["body"].read()), request)

    def start_video(self, request: VideoRequest) -> str:
        make_input = VIDEO_FAMILIES.get(request.family)
        if make_input is None:
            raise ProviderValidation(f"no video adapter for the model family {request.family!r}")
        response = self._call(
            request.region, "start_async_invoke", modelId=request.model_id, modelInput=make_input(request),
            outputDataConfig={"s3OutputDataConfig": {"s3Uri": request.output_s3_uri}},
            clientRequestToken=request.client_request_token,
        )
        return str(response["invocationArn"])

    def get_video_status(self, invocation_arn: str) -> VideoStatus:
        # the invocation lives in the region of its model, which its ARN names
        response = self._call(region_of_arn(invocation_arn), "get_async_invoke", invocationArn=invocation_arn)
        output = response.get("outputDataConfig", {}).get("s3OutputDataConfig", {}).get("s3Uri")
        message = response.get("failureMessage")
        return VideoStatus(status=response["status"], failure_message=message, output_s3_uri=output,
                           failure_code=video_failure_code(message) if response["status"] == "Failed" else None)
