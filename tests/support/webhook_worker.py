"""A delivery worker in its own process (`python -m tests.support.webhook_worker <database-url>`), so a test
can kill it with SIGKILL in the middle of a batch, as Lambda ends a function that times out or crashes."""

from __future__ import annotations

import sys
from datetime import UTC, datetime, timedelta

from genjobs.adapters.webhooks import FernetSecretBox, HttpSender
from genjobs.db import Database, DatabaseSettings
from genjobs.services import webhooks

from tests.support.webhooks import KEY

# Short, so the batch of a killed worker comes due again within the test.
LEASE = timedelta(seconds=2)
BATCH = 50


def main(url: str) -> None:
    db = Database(DatabaseSettings(url=url, pool_min_size=0))
    webhooks.deliver_due(db, FernetSecretBox(KEY), lambda: datetime.now(UTC),
                         sender=HttpSender(allow_private=True, timeout_seconds=30), batch=BATCH, lease=LEASE,
                         parallel=1)


if __name__ == "__main__":
    main(sys.argv[1])
