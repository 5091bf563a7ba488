"""State videos: what recording one video output did (S3 events are built by genjobs.media.events).

Bedrock writes each async invocation's output to `<output s3 uri><invocation id>/output.mp4`; the worker
uses `s3://<media bucket>/jobs/<job_id>/<state>/` as the output URI, so a finished video arrives as an S3
`ObjectCreated` event for `jobs/<job_id>/<state>/<invocation id>/output.mp4`.
"""

from __future__ import annotations

from typing import Literal
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
