"""State videos: the S3 notifications of finished videos, and what recording one did.

Bedrock writes each async invocation's output under `<output s3 uri><invocation id>/` (Nova Reel:
`output.mp4`; Luma names no file); the worker uses `s3://<media bucket>/jobs/<job_id>/<state>/` as the
output URI, so a finished video arrives as an S3 `ObjectCreated` event for
`jobs/<job_id>/<state>/<invocation id>/<name>.mp4`.
"""

from __future__ import annotations

from typing import Any, Literal
from uuid import UUID

from pydantic import BaseModel, ConfigDict, Field, field_validator

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


# -- S3 notifications (https://docs.aws.amazon.com/AmazonS3/latest/userguide/notification-content-structure.html)
# Only what recording a video needs; a record that lacks it is logged and dropped, never raised (a raise would
# make Lambda retry the event and then park it in the DLQ).

MAX_OBJECT_SIZE = 2**63 - 1  # media_outputs.size_bytes is a bigint


class S3Object(BaseModel):
    model_config = ConfigDict(extra="ignore")

    key: str = Field(min_length=1, max_length=1024)
    size: int | None = None

    @field_validator("size", mode="before")
    @classmethod
    def _storable_size(cls, value: Any) -> Any:
        # a size the ledger cannot hold is no size at all (the file is still recorded)
        if isinstance(value, int) and not 0 <= value <= MAX_OBJECT_SIZE:
            return None
        return value


class S3Bucket(BaseModel):
    model_config = ConfigDict(extra="ignore")

    name: str = Field(min_length=1, max_length=255)


class S3Entity(BaseModel):
    model_config = ConfigDict(extra="ignore")

    bucket: S3Bucket
    object: S3Object


class S3Record(BaseModel):
    model_config = ConfigDict(extra="ignore", populate_by_name=True)

    event_name: str = Field(alias="eventName")
    s3: S3Entity
