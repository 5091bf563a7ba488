"""Generated media in S3 under the job's prefix."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from genjobs.adapters import AwsAdapter
from genjobs.ports import MediaDeleteFailed, StoredObject

# DeleteObjects takes up to 1000 keys per request; a missing key counts as deleted, and quiet mode answers only
# the keys that failed (https://docs.aws.amazon.com/AmazonS3/latest/API/API_DeleteObjects.html). It needs
# s3:DeleteObject on each key.
DELETE_BATCH = 1000


class S3MediaStore(AwsAdapter):
    service = "s3"

    def __init__(self, bucket: str, *, base_url: str | None = None, client: Any = None,
                 region: str | None = None) -> None:
        super().__init__(client)
        self.bucket = bucket
        # the bucket's region (the stack's): Bedrock writes async-invoke output only to a bucket in the
        # model's region, so the worker compares the two before starting a video (None: not checked)
        self.region = region
        self._base_url = base_url.rstrip("/") if base_url else None

    def url_for(self, key: str) -> str:
        if self._base_url:
            return f"{self._base_url}/{key}"
        return f"https://{self.bucket}.s3.amazonaws.com/{key}"

    def put(self, key: str, data: bytes, content_type: str) -> StoredObject:
        self.client.put_object(Bucket=self.bucket, Key=key, Body=data, ContentType=content_type)
        return StoredObject(bucket=self.bucket, key=key, url=self.url_for(key), size_bytes=len(data),
                            content_type=content_type)

    def get(self, key: str) -> bytes:
        body: bytes = self.client.get_object(Bucket=self.bucket, Key=key)["Body"].read()
        return body

    def delete(self, keys: Sequence[str]) -> None:
        failed: list[str] = []
        unique = list(dict.fromkeys(keys))
        for start in range(0, len(unique), DELETE_BATCH):
            batch = unique[start:start + DELETE_BATCH]
            answer = self.client.delete_objects(
                Bucket=self.bucket, Delete={"Objects": [{"Key": k} for k in batch], "Quiet": True})
            failed += [f"{e.get('Key')}: {e.get('Code')}" for e in answer.get("Errors") or []]
        if failed:
            raise MediaDeleteFailed(f"{len(failed)} object(s) not deleted: {', '.join(failed[:5])}")
