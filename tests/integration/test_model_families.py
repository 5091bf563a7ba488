"""Each model family's adapter against botocore's Stubber with the request and answer shapes of its Bedrock
page (genjobs.adapters.bedrock lists them): what is sent, what is read back, and how refusals map."""

from __future__ import annotations

import base64
import json
from collections.abc import Iterator
from typing import Any

import pytest
from botocore.stub import ANY, Stubber
from genjobs.adapters.bedrock import BedrockMediaProvider
from genjobs.media.png import png_size
from genjobs.ports import ContentFiltered, ImageRequest, ProviderThrottled, ProviderUnavailable, VideoRequest

from tests.support.fakes import bedrock_client, image_payload, json_body

IMAGE = base64.b64decode(image_payload(1)["images"][0])  # a 16x16 PNG
TOKEN = "a" * 32


@pytest.fixture
def stubbed() -> Iterator[tuple[BedrockMediaProvider, Stubber]]:
    client = bedrock_client()
    with Stubber(client) as stubber:
        yield BedrockMediaProvider(client), stubber
        stubber.assert_no_pending_responses()


def expect_invoke(stubber: Stubber, model_id: str, answer: dict[str, Any]) -> None:
    stubber.add_response("invoke_model", json_body(answer),
                         {"modelId": model_id, "body": ANY, "contentType": "application/json",
                          "accept": "application/json"})


# the parameters of the last request the client was asked to send (before the Stubber answers it)
_LAST: dict[str, Any] = {}


def capture(provider: BedrockMediaProvider) -> None:
    def remember(params: dict[str, Any], **_: Any) -> None:
        _LAST.clear()
        _LAST.update(params)
    provider.client.meta.events.register("provide-client-params.bedrock-runtime.*", remember)


@pytest.mark.parametrize("model_id", ["stability.stable-image-core-v1:1", "stability.stable-image-ultra-v1:1",
                                      "stability.sd3-5-large-v1:0"])
def test_stability_sends_one_image_request_and_reads_seeds_finish_reasons_images(
        stubbed: tuple[BedrockMediaProvider, Stubber], model_id: str) -> None:
    # Given a Stability model answering {seeds, finish_reasons: [null], images}
    provider, stubber = stubbed
    capture(provider)
    answer = {"seeds": [42], "finish_reasons": [None], "images": [image_payload(1)["images"][0]]}
    expect_invoke(stubber, model_id, answer)
    # When an image is asked for with a seed beyond Stability's range
    image = provider.generate_image(ImageRequest(
        model_id=model_id, prompt="a robot", seed=4_294_967_295 + 7, family="stability_image", region="us-west-2",
        parameters={"aspect_ratio": "1:1", "output_format": "png"}))
    # Then the body is Stability's (prompt, aspect_ratio, seed in range, output_format; no width/height) and the
    # image's size is read from the PNG the model returned
    body = json.loads(_LAST["body"])
    assert body == {"prompt": "a robot", "aspect_ratio": "1:1", "seed": 7, "output_format": "png"}
    assert image.data == IMAGE and (image.width, image.height) == png_size(IMAGE) == (16, 16)
    assert image.content_type == "image/png"


@pytest.mark.parametrize("reason", ["Filter reason: prompt", "Filter reason: output image",
                                    "Filter reason: input image"])
def test_stability_finish_reason_filter_is_content_filtered(stubbed: tuple[BedrockMediaProvider, Stubber],
                                                            reason: str) -> None:
    provider, stubber = stubbed
    expect_invoke(stubber, "stability.stable-image-core-v1:1", {"finish_reasons": [reason]})
    with pytest.raises(ContentFiltered) as info:
        provider.generate_image(ImageRequest(model_id="stability.stable-image-core-v1:1", prompt="x", seed=1,
                                             family="stability_image"))
    assert info.value.code == "CONTENT_FILTERED" and not info.value.retryable and reason in info.value.message


def test_stability_inference_error_is_retryable(stubbed: tuple[BedrockMediaProvider, Stubber]) -> None:
    provider, stubber = stubbed
    expect_invoke(stubber, "stability.stable-image-ultra-v1:1", {"finish_reasons": ["Inference error"]})
    with pytest.raises(ProviderUnavailable) as info:
        provider.generate_image(ImageRequest(model_id="stability.stable-image-ultra-v1:1", prompt="x", seed=1,
                                             family="stability_image"))
    assert info.value.retryable


@pytest.mark.parametrize(("model_id", "family"), [("amazon.nova-canvas-v1:0", "nova_canvas"),
                                                  ("amazon.titan-image-generator-v2:0", "titan_image")])
def test_nova_canvas_and_titan_send_text_image_and_read_images(stubbed: tuple[BedrockMediaProvider, Stubber],
                                                               model_id: str, family: str) -> None:
    provider, stubber = stubbed
    capture(provider)
    expect_invoke(stubber, model_id, image_payload(1, family))
    image = provider.generate_image(ImageRequest(model_id=model_id, prompt="a robot", seed=7, family=family,
                                                 parameters={"cfgScale": 6.5, "quality": "standard"}))
    body = json.loads(_LAST["body"])
    assert body["taskType"] == "TEXT_IMAGE" and body["textToImageParams"] == {"text": "a robot"}
    assert body["imageGenerationConfig"] == {"numberOfImages": 1, "width": 1024, "height": 1024, "seed": 7,
                                             "cfgScale": 6.5, "quality": "standard"}
    assert image.data == IMAGE


def test_nova_canvas_error_mentioning_the_filter_is_content_filtered(
        stubbed: tuple[BedrockMediaProvider, Stubber]) -> None:
    provider, stubber = stubbed
    stubber.add_client_error("invoke_model", service_error_code="ValidationException", http_status_code=400,
                             service_message="This request has been blocked by our content filters.")
    with pytest.raises(ContentFiltered):
        provider.generate_image(ImageRequest(model_id="amazon.nova-canvas-v1:0", prompt="x", seed=1))


def test_throttling_is_retryable_for_every_family(stubbed: tuple[BedrockMediaProvider, Stubber]) -> None:
    provider, stubber = stubbed
    stubber.add_client_error("start_async_invoke", service_error_code="ThrottlingException", http_status_code=429,
                             service_message="Too many requests")
    with pytest.raises(ProviderThrottled) as info:
        provider.start_video(_video("luma.ray-v2:0", "luma_ray"))
    assert info.value.retryable


def _video(model_id: str, family: str, **parameters: Any) -> VideoRequest:
    return VideoRequest(model_id=model_id, prompt="waving", seed=3, image=IMAGE, image_format="png",
                        output_s3_uri="s3://media/jobs/j/idle/", client_request_token=TOKEN, duration_seconds=5,
                        parameters=parameters, family=family, region="us-west-2")


def test_luma_ray2_starts_image_to_video_with_its_fields(stubbed: tuple[BedrockMediaProvider, Stubber]) -> None:
    # Given Luma Ray2 answering StartAsyncInvoke with an invocation ARN
    provider, stubber = stubbed
    arn = "arn:aws:bedrock:us-west-2:123456789012:async-invoke/abc123"
    expected_input = {"prompt": "waving", "aspect_ratio": "16:9", "loop": False, "duration": "5s",
                      "resolution": "720p",
                      "keyframes": {"frame0": {"type": "image", "source": {
                          "type": "base64", "media_type": "image/png",
                          "data": base64.b64encode(IMAGE).decode()}}}}
    stubber.add_response("start_async_invoke", {"invocationArn": arn},
                         {"modelId": "luma.ray-v2:0", "modelInput": expected_input,
                          "outputDataConfig": {"s3OutputDataConfig": {"s3Uri": "s3://media/jobs/j/idle/"}},
                          "clientRequestToken": TOKEN})
    # When a video is started (the row's parameters: 720p, 16:9, no loop; 5 s)
    started = provider.start_video(_video("luma.ray-v2:0", "luma_ray", resolution="720p", aspect_ratio="16:9",
                                          loop=False))
    # Then the input was Luma's ("5s", "720p", the keyframe as frame0) and the ARN is returned
    assert started == arn


def test_nova_reel_starts_text_video_with_the_keyframe(stubbed: tuple[BedrockMediaProvider, Stubber]) -> None:
    provider, stubber = stubbed
    arn = "arn:aws:bedrock:us-east-1:123456789012:async-invoke/reel1"
    stubber.add_response("start_async_invoke", {"invocationArn": arn},
                         {"modelId": "amazon.nova-reel-v1:1", "modelInput": {
                             "taskType": "TEXT_VIDEO",
                             "textToVideoParams": {"text": "waving", "images": [
                                 {"format": "png", "source": {"bytes": base64.b64encode(IMAGE).decode()}}]},
                             "videoGenerationConfig": {"durationSeconds": 5, "fps": 24, "dimension": "1280x720",
                                                       "seed": 3}},
                          "outputDataConfig": ANY, "clientRequestToken": TOKEN})
    assert provider.start_video(_video("amazon.nova-reel-v1:1", "nova_reel", dimension="1280x720")) == arn


@pytest.mark.parametrize(("message", "code"), [
    ("The generated video has been blocked by our content filters.", "CONTENT_FILTERED"),
    ("Luma AI: generation failed: internal error", "PROVIDER_FAILED"),
])
def test_luma_async_failure_shapes(stubbed: tuple[BedrockMediaProvider, Stubber], message: str, code: str) -> None:
    # Given a failed invocation as GetAsyncInvoke reports it (status Failed with a failureMessage)
    provider, stubber = stubbed
    arn = "arn:aws:bedrock:us-west-2:123456789012:async-invoke/f1"
    stubber.add_response("get_async_invoke", {
        "invocationArn": arn, "modelArn": "arn:aws:bedrock:us-west-2::foundation-model/luma.ray-v2:0",
        "clientRequestToken": TOKEN, "status": "Failed", "failureMessage": message,
        "submitTime": "2026-12-01T10:00:00Z", "endTime": "2026-12-01T10:01:00Z",
        "outputDataConfig": {"s3OutputDataConfig": {"s3Uri": "s3://media/jobs/j/idle/"}}}, {"invocationArn": arn})
    # When it is polled
    status = provider.get_video_status(arn)
    # Then it is Failed with the message and the code the job fails with
    assert (status.status, status.failure_message, status.failure_code) == ("Failed", message, code)


def test_a_client_per_region_when_none_is_given() -> None:
    # Given a provider that makes its own clients
    provider = BedrockMediaProvider(region="us-east-1")
    # When clients are asked for two regions (and the function's own)
    west, east, own = provider.client_for("us-west-2"), provider.client_for("us-east-1"), provider.client_for(None)
    # Then each region has one client, made once
    assert west.meta.region_name == "us-west-2" and east.meta.region_name == "us-east-1"
    assert own is east and provider.client_for("us-west-2") is west
