"""Cursor keys from a Secrets Manager secret, rotatable without a restart.

The secret's `AWSCURRENT` version signs; its `AWSPREVIOUS` version (if there is one) still verifies. Putting a
new value (`aws secretsmanager put-secret-value`) makes it AWSCURRENT and moves AWSPREVIOUS to the version it
replaced, so a cursor handed out just before a rotation stays valid until the next one
(https://docs.aws.amazon.com/secretsmanager/latest/apireference/API_PutSecretValue.html,
https://docs.aws.amazon.com/secretsmanager/latest/apireference/API_GetSecretValue.html: VersionStage
AWSPREVIOUS). Both are cached for `max_age` seconds per container, so containers pick a rotation up within
minutes and a request does not pay a Secrets Manager round trip.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from typing import Any

from genjobs.adapters import AwsAdapter
from genjobs.ports import CursorKeys


class SecretsManagerCursorKeys(AwsAdapter):
    service = "secretsmanager"

    def __init__(self, secret_id: str, *, client: Any = None, max_age: float = 300.0,
                 monotonic: Callable[[], float] = time.monotonic) -> None:
        super().__init__(client)
        self.secret_id = secret_id
        self.max_age = max_age
        self._monotonic = monotonic
        self._cached: tuple[float, CursorKeys] | None = None
        self._lock = threading.Lock()

    def __call__(self) -> CursorKeys:
        with self._lock:
            now = self._monotonic()
            if self._cached is None or now - self._cached[0] >= self.max_age:
                self._cached = (now, self._fetch())
            return self._cached[1]

    def _fetch(self) -> CursorKeys:
        current = self.client.get_secret_value(SecretId=self.secret_id)["SecretString"]
        try:
            previous = self.client.get_secret_value(SecretId=self.secret_id, VersionStage="AWSPREVIOUS")["SecretString"]
        except self.client.exceptions.ResourceNotFoundException:
            previous = None  # never rotated: no previous version
        return CursorKeys.from_text(current, previous if previous != current else None)
