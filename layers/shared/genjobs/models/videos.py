"""State videos: what recording one video output did, and the S3 event shape that reports an output.

Bedrock writes each async invocation's output to `<output s3 uri><invocation id>/output.mp4`; the worker
uses `s3://<media bucket>/jobs/<job_id>/<state>/` as the output URI, so a finished video arrives as an S3
`ObjectCreated` event for `jobs/<job_id>/<state>/<invocation id>/output.mp4`.
"""

from __future__ import annotations

from typing import Any, Literal
from urllib.parse import quote_plus
from uuid import UUID

from pydantic import BaseModel

VideoOutcome = Literal["recorded", "completed", "duplicate", "ignored"]


class VideoRecorded(BaseModel):
    """The result of one S3 record: `ignored` ones (not a state video, unknown or finished job, a state
    the job did not ask for) were logged and dropped."""

    bucket: str
    key: str
    outcome: VideoOutcome
    reason: str | None = None
    job_id: UUID | None = None
    state: str | None = None
    job_status: str | None = None
    progress: int | None = None
    charged: bool = False


def object_created_event(bucket: str, key: str, size: int, *, region: str = "us-east-1") -> dict[str, Any]:
    """An S3 `ObjectCreated:Put` notification as S3 delivers it to Lambda (keys are URL-encoded)."""
    return {
        "Records": [{
            "eventVersion": "2.1",
            "eventSource": "aws:s3",
            "awsRegion": region,
            "eventTime": "1970-01-01T00:00:00.000Z",
            "eventName": "ObjectCreated:Put",
            "userIdentity": {"principalId": "AWS:genjobs"},
            "requestParameters": {"sourceIPAddress": "127.0.0.1"},
            "responseElements": {"x-amz-request-id": "0", "x-amz-id-2": "0"},
            "s3": {
                "s3SchemaVersion": "1.0",
                "configurationId": "genjobs-video-outputs",
                "bucket": {"name": bucket, "ownerIdentity": {"principalId": "genjobs"},
                           "arn": f"arn:aws:s3:::{bucket}"},
                "object": {"key": quote_plus(key, safe="/"), "size": size, "eTag": "0", "sequencer": "0"},
            },
        }],
    }
