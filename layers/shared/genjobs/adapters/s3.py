"""Generated media in S3 under the job's prefix."""

from __future__ import annotations

from typing import Any

from genjobs.adapters import AwsAdapter
from genjobs.ports import StoredObject


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
