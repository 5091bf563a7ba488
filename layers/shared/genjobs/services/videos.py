"""State videos: one Bedrock async invocation per state, completed by S3 events (being built in issue 4)."""

from __future__ import annotations

from typing import TYPE_CHECKING

from genjobs.clock import Clock
from genjobs.db import Database, Row
from genjobs.media.provider import MediaProvider, MediaStore, ProviderValidation

if TYPE_CHECKING:
    from genjobs.services.worker import RunOutcome, WorkerSettings


def start_state_videos(db: Database, provider: MediaProvider, store: MediaStore, claim: Row, *,
                       settings: WorkerSettings, clock: Clock) -> RunOutcome:
    raise ProviderValidation("state video generation is not implemented in this build")
