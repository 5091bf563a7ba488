"""A stack update that adds a migration, then rolls back: the migrations resource must answer SUCCESS.

On rollback CloudFormation sends SchemaMigrations an Update with the previous layer, whose sql/ lacks the
migration the failed update applied. A database ahead of the code is the normal expand/contract state (every
migration must keep working with the previous code: docs/deploy.md), so the runner must apply nothing, log
that the database is ahead, and succeed; answering FAILED leaves the stack in UPDATE_ROLLBACK_FAILED.

genjobs.db.migrations does exactly that: applied migrations newer than every file are left alone and logged once.
"""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest
from genjobs.db import Database, DatabaseSettings
from genjobs.db.migrations import load_migrations, migrate, pending_migrations
from genjobs.errors import MigrationError

from tests.support.template import REPO_ROOT

NEW_MIGRATION = "999_rollback_probe.sql"
NEW_SQL = "CREATE TABLE rollback_probe (id integer PRIMARY KEY);\n"


@pytest.fixture
def releases(tmp_path: Path) -> tuple[Path, Path]:
    """sql/ of the running release (old) and of the release being deployed (new: one more migration)."""
    old, new = tmp_path / "old", tmp_path / "new"
    shutil.copytree(REPO_ROOT / "sql", old)
    shutil.copytree(REPO_ROOT / "sql", new)
    (new / NEW_MIGRATION).write_text(NEW_SQL, encoding="utf-8")
    return old, new


@pytest.fixture
def empty_db(empty_database_url: str) -> Iterator[Database]:
    database = Database(DatabaseSettings(url=empty_database_url, pool_max_size=2))
    yield database
    database.close()


def _deploy_then_fail(db: Database, old: Path, new: Path) -> None:
    # Given the stack created with the old release
    assert migrate(db, load_migrations(old))
    # When an update applies the new release's migration (then another resource fails and the stack rolls back)
    applied = migrate(db, load_migrations(new))
    assert [m.filename for m in applied] == [NEW_MIGRATION]


def test_rollback_update_with_the_previous_layer_succeeds(empty_db: Database, releases: tuple[Path, Path]) -> None:
    old, new = releases
    _deploy_then_fail(empty_db, old, new)
    # When the rollback's Update runs the old release's runner
    applied = migrate(empty_db, load_migrations(old))
    # Then nothing is applied or dropped, and it succeeds (the custom resource answers SUCCESS)
    assert applied == []
    assert pending_migrations(empty_db, load_migrations(old)) == []
    with empty_db.session() as session:
        assert session.fetch_value("SELECT to_regclass('rollback_probe') IS NOT NULL") is True


def test_an_edited_applied_migration_is_still_refused(empty_db: Database, releases: tuple[Path, Path]) -> None:
    """What must stay refused after the fix: a file whose content changed after it was applied."""
    old, new = releases
    _deploy_then_fail(empty_db, old, new)
    (new / NEW_MIGRATION).write_text(NEW_SQL + "-- edited\n", encoding="utf-8")
    with pytest.raises(MigrationError, match="edited after it was applied"):
        migrate(empty_db, load_migrations(new))
