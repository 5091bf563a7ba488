"""State videos: one Bedrock async invocation per state, completed by S3 events.

The worker (`start_state_videos`, called by `worker.run_job` after the claim) moves the job to
`generating_videos`, reads the approved image from the media store, fits it to the video frame (see
genjobs.media.keyframe) and starts one image-to-video
invocation per state still missing, with its output under `s3://<bucket>/jobs/<job_id>/<state>/` and a
`clientRequestToken` derived from job, attempt and state (a retried start of the same invocation is
deduplicated by Bedrock). Each invocation is noted before it starts and gets its ARN after: every write
names the attempt and the status, so a canceled or rescued job stops the worker at its next write.

Completion is event-driven: Bedrock writes `<invocation id>/output.mp4` under the state's prefix, S3
reports `ObjectCreated`, and `record_video_output` records it in one statement (genjobs_record_state_v2,
which completes the job with the last state). Duplicate and out-of-order events are harmless; events for
unknown, finished or canceled jobs are logged and dropped. Invocations that never report are the
maintenance sweep's business.
"""

from __future__ import annotations

import hashlib
import logging
import re
from datetime import timedelta
from typing import Literal
from urllib.parse import urlparse
from uuid import UUID

from genjobs.data import jobs as job_data
from genjobs.data import videos as video_data
from genjobs.data.jobs import Claim
from genjobs.db import Database
from genjobs.media.keyframe import fit_keyframe, video_frame
from genjobs.models.videos import VideoOutcome, VideoRecorded
from genjobs.ports import Clock, MediaProvider, MediaStore, ProviderError, VideoRequest
from genjobs.services.prompts import render_prompt
from genjobs.services.worker.state import JobCannotRun, RunOutcome, WorkerSettings, stale

logger = logging.getLogger("genjobs.videos")

# Nova Reel accepts seeds in [0, 2147483646] (Luma Ray2 takes no seed)
MAX_VIDEO_SEED = 2_147_483_646
# A state's video: any MP4 directly under the invocation's folder. Nova Reel's documentation names it
# output.mp4; Luma's parameter page names no file ("The MP4 file will be stored in the Amazon S3 bucket as
# configured", model-parameters-luma.html, read 2026-12-01), so the name is not part of the match. The S3
# notification filters on the same suffix (template.yaml, MediaBucket).
OUTPUT_KEY = re.compile(
    r"^jobs/(?P<job_id>[0-9a-fA-F-]{36})/(?P<state>[a-z][a-z0-9_]{0,39})/(?P<invocation>[A-Za-z0-9._-]{1,128})"
    r"/[A-Za-z0-9._-]{1,128}\.mp4$"
)


def output_prefix(job_id: UUID, state: str) -> str:
    return f"jobs/{job_id}/{state}/"


def output_key_for(invocation_arn: str, output_s3_uri: str) -> tuple[str, str]:
    """Where Bedrock writes a finished invocation: <output prefix>/<invocation id>/output.mp4."""
    invocation_id = invocation_arn.rsplit("/", 1)[-1]
    parsed = urlparse(output_s3_uri)
    prefix = parsed.path.strip("/")
    return parsed.netloc, f"{prefix}/{invocation_id}/output.mp4"


def client_request_token(job_id: UUID, attempt: int, state: str) -> str:
    """Idempotency token for one state's invocation: [a-zA-Z0-9-], well under Bedrock's 256 characters.
    State names may hold '_' (not allowed in tokens), so the state enters as a digest."""
    digest = hashlib.sha256(state.encode()).hexdigest()[:24]
    return f"{job_id.hex}-{attempt}-{digest}"


def video_seed(job_id: UUID, state: str) -> int:
    digest = hashlib.sha256(f"{job_id}:{state}".encode()).digest()
    return int.from_bytes(digest[:8], "big") % (MAX_VIDEO_SEED + 1)


def image_format(data: bytes) -> Literal["png", "jpeg"]:
    if data.startswith(b"\x89PNG\r\n\x1a\n"):
        return "png"
    if data.startswith(b"\xff\xd8\xff"):
        return "jpeg"
    raise JobCannotRun("NO_APPROVED_IMAGE", "the approved image is neither PNG nor JPEG")


def start_state_videos(db: Database, provider: MediaProvider, store: MediaStore, claim: Claim, *,
                       settings: WorkerSettings, clock: Clock) -> RunOutcome:
    job_id, attempt = claim.id, claim.attempt
    parameters = claim.model_parameters
    duration = int(claim.video_seconds)

    if not claim.persona_image_key:
        raise JobCannotRun("NO_APPROVED_IMAGE", "the persona has no approved variation with a stored image")
    if settings.media_region and claim.model_region and settings.media_region != claim.model_region:
        # Bedrock writes an async invocation's output to an S3 bucket in the model's own region only
        raise JobCannotRun("MODEL_REGION_MISMATCH",
                           f"{claim.model_id} runs in {claim.model_region}; the media bucket is in "
                           f"{settings.media_region}: deploy the stack in {claim.model_region} to use it")
    # the first keyframe is the (square) approved image fitted to the video's frame: exactly the dimension
    # for Nova Reel, the resolution at the aspect ratio for Luma Ray2
    width, height = video_frame(claim.model_family, parameters)
    image = fit_keyframe(store.get(claim.persona_image_key), width, height)
    fmt = image_format(image)

    begun = video_data.begin_video_phase(
        # the short lease: nothing runs at Bedrock yet; the first recorded invocation extends it
        db, job_id=job_id, attempt=attempt, lease_until=clock() + settings.lease,
        metadata={"video_duration_seconds": duration, "video_model_id": claim.model_id},
    )
    if begun is None:
        logger.info("job %s attempt %s is no longer current; not starting videos", job_id, attempt)
        return stale(claim)
    done = set(begun["states_generated"] or [])
    pending = [s for s in begun["states_requested"] if s not in done]
    for number, state in enumerate(pending, start=1):
        token = client_request_token(job_id, attempt, state)
        uri = f"s3://{store.bucket}/{output_prefix(job_id, state)}"
        if not video_data.record_invocation_starting(db, job_id=job_id, attempt=attempt, state=state, token=token,
                                                     output_s3_uri=uri):
            return stale(claim)
        prompt = render_prompt(claim.template_text, "state_videos", persona=claim.persona_fields(),
                               variables=claim.prompt_variables, template_defaults=claim.template_defaults,
                               state=state)
        try:
            arn = provider.start_video(VideoRequest(
                model_id=claim.model_id, prompt=prompt, seed=video_seed(job_id, state), image=image,
                image_format=fmt, output_s3_uri=uri, client_request_token=token, duration_seconds=duration,
                parameters=parameters, family=claim.model_family, region=claim.model_region,
            ))
        except ProviderError as exc:
            video_data.record_invocation_failed(db, job_id=job_id, attempt=attempt, state=state, message=exc.message)
            raise
        if not video_data.record_invocation_started(
                db, job_id=job_id, attempt=attempt, state=state, invocation_arn=arn,
                step=f"started_video_{number}_of_{len(pending)}", lease_until=clock() + settings.video_lease):
            logger.info("job %s attempt %s was canceled or rescued while starting videos", job_id, attempt)
            return stale(claim)
    logger.info("job %s attempt %s: started %d video invocations", job_id, attempt, len(pending))
    return RunOutcome(job_id=job_id, claimed=True, status="generating_videos", attempt=attempt)


_IGNORED_REASONS = {"not_found": "unknown job", "state_not_requested": "the job did not ask for this state"}


def record_video_output(db: Database, store: MediaStore, *, bucket: str, key: str, size: int | None,
                        clock: Clock, lease: timedelta = WorkerSettings.video_lease) -> VideoRecorded:
    """Record one finished video from an S3 ObjectCreated notification (one statement); the job's lease is
    renewed to now + `lease` (JOB_VIDEO_LEASE_SECONDS). Never raises for an event that is not ours to record:
    it is logged and answered as `ignored`."""
    def ignored(reason: str, job_id: UUID | None = None, state: str | None = None,
                job_status: str | None = None) -> VideoRecorded:
        logger.warning("dropping S3 event for s3://%s/%s: %s", bucket, key, reason)
        return VideoRecorded(bucket=bucket, key=key, outcome="ignored", reason=reason, job_id=job_id, state=state,
                             job_status=job_status)

    if bucket != store.bucket:
        return ignored(f"not the media bucket ({store.bucket})")
    match = OUTPUT_KEY.fullmatch(key)
    if match is None:
        return ignored("not a state video output (jobs/<job_id>/<state>/<invocation>/<name>.mp4)")
    try:
        job_id = UUID(match["job_id"])
    except ValueError:
        return ignored("the job id is not a UUID")
    state = match["state"]
    answer = job_data.record_state(db, job_id=job_id, merchant_id=None, attempt=None, running=("generating_videos",),
                                   state=state, url=store.url_for(key), bucket=bucket, key=key, size_bytes=size,
                                   complete_when_done=True, now=clock(), lease=lease)
    before = answer.before_status
    if answer.outcome == "not_running":
        return ignored(f"the job is {before}", job_id, state, before)
    if answer.outcome in _IGNORED_REASONS:
        return ignored(_IGNORED_REASONS[answer.outcome], job_id, state, before)
    outcome: VideoOutcome = "completed" if answer.outcome == "completed" else (
        "recorded" if answer.media_recorded else "duplicate")
    job = answer.as_job()
    logger.info("job %s: video for %s %s (progress %s, status %s)", job_id, state, outcome, job.progress, job.status)
    return VideoRecorded(bucket=bucket, key=key, outcome=outcome, job_id=job_id, state=state, job_status=job.status,
                         progress=job.progress, charged=answer.charged)
