"""The migration runner: once-only under concurrency, checksums, atomic failures, pending listing."""

from __future__ import annotations

import re
import shutil
import threading
from pathlib import Path

import pytest
from genjobs.db import Database
from genjobs.db.migrations import default_migrations_dir, load_migrations, migrate, pending_migrations
from genjobs.errors import MigrationError

from tests.support.database import make_database

VIEWS = ["merchant_statistics", "daily_job_stats", "active_jobs", "model_stats", "recent_jobs_with_outputs"]


@pytest.fixture
def empty_db(empty_database_url: str):
    database = make_database(empty_database_url, pool_min_size=0, pool_max_size=2)
    yield database
    database.close()


def copy_migrations(tmp_path: Path) -> Path:
    target = tmp_path / "sql"
    shutil.copytree(default_migrations_dir(), target)
    return target


def test_fresh_database_gets_every_migration_once(empty_db: Database) -> None:
    # Given an empty database, when migrations run twice
    first = migrate(empty_db)
    second = migrate(empty_db)

    # Then the first run applied every file, in order, and the second nothing
    files = load_migrations()
    assert [m.version for m in first] == [m.version for m in files]
    assert second == []
    rows = empty_db.fetch_all("SELECT version, name, checksum, applied_at, duration_ms FROM schema_migrations "
                              "ORDER BY version")
    assert [(r["version"], r["name"], r["checksum"]) for r in rows] == [
        (m.version, m.name, m.checksum) for m in files
    ]
    assert all(r["applied_at"] is not None and r["duration_ms"] >= 0 for r in rows)
    assert pending_migrations(empty_db) == []


def test_four_concurrent_runners_apply_each_migration_once(empty_database_url: str) -> None:
    # Given four runners, each with its own connection, released at the same moment
    barrier = threading.Barrier(4)
    results: list[list[int]] = []
    errors: list[BaseException] = []
    lock = threading.Lock()

    def runner() -> None:
        database = make_database(empty_database_url, pool_min_size=0)
        try:
            barrier.wait()
            applied = [m.version for m in migrate(database)]
            with lock:
                results.append(applied)
        except BaseException as exc:  # collected and asserted below
            with lock:
                errors.append(exc)
        finally:
            database.close()

    threads = [threading.Thread(target=runner) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()

    # Then no runner failed, and together they applied every migration exactly once
    assert errors == []
    all_applied = sorted(v for applied in results for v in applied)
    assert all_applied == [m.version for m in load_migrations()]
    check = make_database(empty_database_url, pool_min_size=0)
    try:
        assert check.fetch_value("SELECT count(*) FROM schema_migrations") == len(load_migrations())
        assert check.fetch_value("SELECT count(*) FROM model_configurations") == 7  # seed rows once (004: 3, 040: 4)
    finally:
        check.close()


def test_edited_applied_migration_is_refused(empty_db: Database, tmp_path: Path) -> None:
    # Given applied migrations whose first file is then edited
    directory = copy_migrations(tmp_path)
    migrate(empty_db, load_migrations(directory))
    first = sorted(directory.glob("001_*.sql"))[0]
    first.write_text(first.read_text() + "\n-- a harmless looking edit\n")

    # Then both migrate and the pending listing refuse, naming the file
    with pytest.raises(MigrationError, match=re.escape(first.name)):
        migrate(empty_db, load_migrations(directory))
    with pytest.raises(MigrationError, match="edited"):
        pending_migrations(empty_db, load_migrations(directory))


def test_failing_migration_leaves_nothing_of_itself(empty_db: Database, tmp_path: Path) -> None:
    # Given a new migration whose second statement fails
    directory = copy_migrations(tmp_path)
    (directory / "900_broken.sql").write_text(
        "CREATE TABLE half_done (id int);\nINSERT INTO no_such_table VALUES (1);\n"
    )

    # When migrations run
    with pytest.raises(MigrationError, match=r"900_broken\.sql"):
        migrate(empty_db, load_migrations(directory))

    # Then the earlier migrations are applied, and nothing of the broken one is
    assert empty_db.fetch_value("SELECT to_regclass('half_done')") is None
    assert empty_db.fetch_value("SELECT max(version) FROM schema_migrations") == load_migrations()[-1].version
    assert [m.filename for m in pending_migrations(empty_db, load_migrations(directory))] == ["900_broken.sql"]


def test_pending_lists_unapplied_files(empty_db: Database, tmp_path: Path) -> None:
    directory = copy_migrations(tmp_path)
    assert [m.filename for m in pending_migrations(empty_db, load_migrations(directory))] == [
        m.filename for m in load_migrations()
    ]
    migrate(empty_db, load_migrations(directory))
    (directory / "901_more.sql").write_text("CREATE TABLE later (id int);")
    assert [m.filename for m in pending_migrations(empty_db, load_migrations(directory))] == ["901_more.sql"]


def test_badly_named_file_is_refused(tmp_path: Path) -> None:
    directory = copy_migrations(tmp_path)
    (directory / "5-oops.sql").write_text("SELECT 1;")
    with pytest.raises(MigrationError, match=r"NNN_lowercase_name"):
        load_migrations(directory)


@pytest.mark.parametrize("view", VIEWS)
def test_every_view_is_selectable(db: Database, view: str) -> None:
    # Given some data in every table a view reads
    db.execute("INSERT INTO merchants (id) VALUES ('acme')")
    persona = db.fetch_value("INSERT INTO personas (merchant_id, name) VALUES ('acme', 'Pip') RETURNING id")
    db.execute(
        "INSERT INTO generation_jobs (merchant_id, persona_id, job_type, variation_count, model_id) "
        "VALUES ('acme', %s, 'character_variations', 3, 'amazon.nova-canvas-v1:0')", (persona,))
    rows = db.fetch_all(f"SELECT * FROM {view}")  # view names come from the fixed list above
    assert rows, f"{view} returned no rows"


def test_a_database_ahead_of_the_code_is_left_alone_and_logged_once(
        empty_db: Database, tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    # Given a newer release applied 998 and 999, then the stack rolled back to the release without them
    newer = copy_migrations(tmp_path)
    (newer / "998_probe_a.sql").write_text("CREATE TABLE probe_a (id int);\n")
    (newer / "999_probe_b.sql").write_text("CREATE TABLE probe_b (id int);\n")
    migrate(empty_db, load_migrations(newer))

    # When the older release's migrations run (what CloudFormation's rollback Update does)
    with caplog.at_level("WARNING", logger="genjobs.migrations"):
        applied = migrate(empty_db)

    # Then nothing is applied or refused, nothing is pending, the newer tables stay, and one warning names them
    assert applied == [] and pending_migrations(empty_db) == []
    assert empty_db.fetch_value("SELECT count(*) FROM probe_a") == 0
    warnings = [r.getMessage() for r in caplog.records if "ahead of the code" in r.getMessage()]
    assert len(warnings) == 1 and "998_probe_a" in warnings[0] and "999_probe_b" in warnings[0]


def test_a_hole_in_the_history_is_still_refused(empty_db: Database, tmp_path: Path) -> None:
    # Given every migration applied, and a release whose sql/ lost a file below its newest one
    migrate(empty_db)
    holed = copy_migrations(tmp_path)
    victim = sorted(holed.glob("*.sql"))[1]
    victim.unlink()

    # Then the runner refuses: a deleted history file is not a rollback
    with pytest.raises(MigrationError, match="is applied but its file is missing"):
        migrate(empty_db, load_migrations(holed))
