"""A stopped database fails requests fast with DatabaseUnavailable; a restarted one serves them again."""

from __future__ import annotations

import time
from collections.abc import Iterator

import pytest
from genjobs.db import Database, DatabaseSettings
from genjobs.errors import DatabaseUnavailable

from tests.support.postgres import EmbeddedServerControl


@pytest.fixture
def outage_server() -> Iterator[EmbeddedServerControl]:
    control = EmbeddedServerControl()
    yield control
    control.close()


def test_stopped_database_fails_fast_and_recovers_without_restart(outage_server: EmbeddedServerControl) -> None:
    # Given a warm pool on a running server
    database = Database(DatabaseSettings(url=outage_server.url, connect_timeout_seconds=2.0))
    try:
        assert database.fetch_value("SELECT 1") == 1

        # When the server stops
        outage_server.stop()

        # Then requests fail with DatabaseUnavailable within the connect timeout, twice in a row
        for _ in range(2):
            started = time.monotonic()
            with pytest.raises(DatabaseUnavailable):
                database.fetch_value("SELECT 1")
            assert time.monotonic() - started < 2.0 + 1.0

        # When it comes back, the very next request on the same Database object succeeds
        outage_server.start()
        assert database.fetch_value("SELECT 2") == 2
    finally:
        database.close()


def test_unreachable_database_on_first_request(outage_server: EmbeddedServerControl) -> None:
    outage_server.stop()
    database = Database(DatabaseSettings(url=outage_server.url, connect_timeout_seconds=1.0))
    try:
        started = time.monotonic()
        with pytest.raises(DatabaseUnavailable) as info:
            database.fetch_value("SELECT 1")
        assert time.monotonic() - started < 1.0 + 1.0
        assert info.value.retry_after_seconds > 0
        outage_server.start()
        assert database.fetch_value("SELECT 3") == 3
    finally:
        database.close()
