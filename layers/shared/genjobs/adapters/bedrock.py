"""Amazon Bedrock as the media provider: Nova Canvas / Titan Image Generator v2 images (invoke_model) and
Nova Reel image-to-video (start_async_invoke, output written to S3 by Bedrock)."""

from __future__ import annotations

import base64
import json
from typing import Any

from genjobs.adapters import AwsAdapter
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
_CONTENT_FILTER_HINTS = ("content filter", "blocked", "responsible ai", "safety")


def classify_client_error(code: str, message: str) -> ProviderError:
    if code in _THROTTLED:
        return ProviderThrottled(message)
    if code in _UNAVAILABLE:
        return ProviderUnavailable(message)
    if code == "ValidationException" and any(hint in message.lower() for hint in _CONTENT_FILTER_HINTS):
        return ContentFiltered(message)
    return ProviderValidation(f"{code}: {message}")


def image_request_body(request: ImageRequest) -> dict[str, Any]:
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


def video_request_input(request: VideoRequest) -> dict[str, Any]:
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


class BedrockMediaProvider(AwsAdapter):
    service = "bedrock-runtime"

    def _call(self, operation: str, **kwargs: Any) -> Any:
        from botocore.exceptions import BotoCoreError, ClientError

        try:
            return getattr(self.client, operation)(**kwargs)
        except ClientError as exc:
            error = exc.response.get("Error", {})
            raise classify_client_error(str(error.get("Code", "")), str(error.get("Message", ""))) from exc
        except BotoCoreError as exc:
            raise ProviderUnavailable(str(exc)) from exc

    def generate_image(self, request: ImageRequest) -> GeneratedImage:
        response = self._call(
            "invoke_model",
            modelId=request.model_id,
            body=json.dumps(image_request_body(request)),
            contentType="application/json",
            accept="application/json",
        )
        payload = json.loads(response["body"].read())
        if payload.get("error"):
            message = str(payload["error"])
            if any(hint in message.lower() for hint in _CONTENT_FILTER_HINTS):
                raise ContentFiltered(message)
            raise ProviderFailed(message)
        images = payload.get("images") or []
        if not images:
            raise ProviderFailed("the model returned no image")
        return GeneratedImage(data=base64.b64decode(images[0]), content_type="image/png",
                              width=request.width, height=request.height)

    def start_video(self, request: VideoRequest) -> str:
        response = self._call(
            "start_async_invoke",
            modelId=request.model_id,
            modelInput=video_request_input(request),
            outputDataConfig={"s3OutputDataConfig": {"s3Uri": request.output_s3_uri}},
            clientRequestToken=request.client_request_token,
        )
        return str(response["invocationArn"])

    def get_video_status(self, invocation_arn: str) -> VideoStatus:
        response = self._call("get_async_invoke", invocationArn=invocation_arn)
        output = response.get("outputDataConfig", {}).get("s3OutputDataConfig", {}).get("s3Uri")
        return VideoStatus(status=response["status"], failure_message=response.get("failureMessage"),
                           output_s3_uri=output)
