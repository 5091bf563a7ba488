"""S3 event notifications, built the way S3 sends them: the local media provider announces the videos it
writes with these, so the progress function sees exactly what an `s3:ObjectCreated:*` notification carries
in AWS (https://docs.aws.amazon.com/AmazonS3/latest/userguide/notification-content-structure.html).

The object key is URL-encoded as S3 encodes it (space as `+`, `/` kept), which is why readers must decode it
(powertools' `S3Event` does: `unquote_plus`).
"""

from __future__ import annotations

import hashlib
import itertools
import threading
import time
import uuid
from datetime import UTC, datetime
from typing import Any
from urllib.parse import quote_plus

_sequence_lock = threading.Lock()
_sequence = itertools.count()


def _sequencer() -> str:
    """An upper-case hex string that grows with each event (S3: ordering of events for one key)."""
    with _sequence_lock:
        n = next(_sequence)
    return f"{time.time_ns() + n:018X}"


def _event_time(moment: datetime | None) -> str:
    moment = (moment or datetime.now(UTC)).astimezone(UTC)
    return moment.strftime("%Y-%m-%dT%H:%M:%S.") + f"{moment.microsecond // 1000:03d}Z"


def encode_key(key: str) -> str:
    """The object key as it appears in a notification."""
    return quote_plus(key, safe="/")


def s3_object_created_event(
    bucket: str,
    key: str,
    size: int,
    *,
    etag: str | None = None,
    data: bytes | None = None,
    event_name: str = "ObjectCreated:Put",
    region: str = "us-east-1",
    event_time: datetime | None = None,
    source_ip: str = "127.0.0.1",
    principal_id: str = "AWS:AROALOCALGENJOBSMEDIA:genjobs-local",
    configuration_id: str = "genjobs-local-video-output",
    sequencer: str | None = None,
) -> dict[str, Any]:
    """One `Records[0]` S3 notification for an object written to `bucket`/`key`.

    `etag` is the object's ETag without quotes; when omitted it is the MD5 of `data` (what S3 reports for a
    single-part upload), or of the bucket/key/size when no data is given.
    """
    if size < 0:
        raise ValueError("size must be >= 0")
    if etag is None:
        digest_source = data if data is not None else f"{bucket}/{key}/{size}".encode()
        etag = hashlib.md5(digest_source, usedforsecurity=False).hexdigest()
    request_id = uuid.uuid4().hex[:16].upper()
    return {
        "Records": [
            {
                "eventVersion": "2.1",
                "eventSource": "aws:s3",
                "awsRegion": region,
                "eventTime": _event_time(event_time),
                "eventName": event_name,
                "userIdentity": {"principalId": principal_id},
                "requestParameters": {"sourceIPAddress": source_ip},
                "responseElements": {
                    "x-amz-request-id": request_id,
                    "x-amz-id-2": hashlib.sha256(request_id.encode()).hexdigest(),
                },
                "s3": {
                    "s3SchemaVersion": "1.0",
                    "configurationId": configuration_id,
                    "bucket": {
                        "name": bucket,
                        "ownerIdentity": {"principalId": "A3LOCALGENJOBSOWNER"},
                        "arn": f"arn:aws:s3:::{bucket}",
                    },
                    "object": {
                        "key": encode_key(key),
                        "size": size,
                        "eTag": etag,
                        "sequencer": sequencer or _sequencer(),
                    },
                },
            }
        ]
    }
