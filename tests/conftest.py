from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest
from genjobs.db import Database, DatabaseSettings
from genjobs.db.migrations import migrate

from local_runner.media import LocalMediaStore
from tests.support.database import make_database, set_database
from tests.support.postgres import PostgresCluster, cluster_from_env

pytest_plugins = ["tests.support.pinning"]

os.environ.setdefault("AWS_DEFAULT_REGION", "us-east-1")
os.environ.setdefault("AWS_REGION", "us-east-1")
os.environ.setdefault("AWS_ACCESS_KEY_ID", "testing")
os.environ.setdefault("AWS_SECRET_ACCESS_KEY", "testing")
os.environ.setdefault("POWERTOOLS_METRICS_NAMESPACE", "genjobs-tests")
os.environ.setdefault("POWERTOOLS_TRACE_DISABLED", "true")
# the list cursors' key (genjobs.settings CURSOR_KEYS): a test-only value, like the local runner's own
os.environ.setdefault("CURSOR_KEYS", "tests-only-cursor-key-0123456789abcdef")
# the key that encrypts webhook secrets (in AWS a Secrets Manager secret; the local runner makes its own)
os.environ.setdefault("WEBHOOK_SECRET_KEY", "tests-only-webhook-secret-key-0123456789abcdef")


@pytest.fixture(scope="session")
def pg_cluster() -> Iterator[PostgresCluster]:
    cluster = cluster_from_env()
    yield cluster
    cluster.close()


@pytest.fixture(scope="session")
def template_database(pg_cluster: PostgresCluster) -> str:
    """A database with every migration applied, cloned for each test."""
    name = pg_cluster.unique_name("genjobs_template")
    url = pg_cluster.create_database(name)
    db = Database(DatabaseSettings(url=url, pool_min_size=0))
    try:
        migrate(db)
    finally:
        db.close()
    return name


@pytest.fixture
def database_url(pg_cluster: PostgresCluster, template_database: str) -> Iterator[str]:
    name = pg_cluster.unique_name("genjobs_test")
    url = pg_cluster.create_database(name, template=template_database)
    yield url
    pg_cluster.drop_database(name)


@pytest.fixture
def empty_database_url(pg_cluster: PostgresCluster) -> Iterator[str]:
    name = pg_cluster.unique_name("genjobs_empty")
    url = pg_cluster.create_database(name)
    yield url
    pg_cluster.drop_database(name)


@pytest.fixture
def db(database_url: str) -> Iterator[Database]:
    """The process-wide database for this test, pointed at a fresh clone of the migrated template."""
    database = make_database(database_url, pool_max_size=4)
    previous = set_database(database)
    yield database
    set_database(previous)
    database.close()


@pytest.fixture
def store(tmp_path: Path) -> LocalMediaStore:
    """A media store on local files (the local runner's), for services that write images."""
    return LocalMediaStore(tmp_path, bucket="genjobs-media-local", base_url="http://media.test")
