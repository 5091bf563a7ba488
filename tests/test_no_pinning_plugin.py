"""The no-pinning plugin (tests/support/pinning.py) catches every statement that would pin an RDS Proxy
session, lets ordinary statements through, and fails guarded tests (only those)."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
from genjobs.db import Database
from genjobs.db.instrumentation import instrumentation
from genjobs.db.migrations import load_migrations

from tests.support.pinning import MAX_STATEMENT_BYTES, PinningGuard, is_guarded, pinning_reasons, split_statements

REPO_ROOT = Path(__file__).resolve().parents[1]

PINNING = {
    "set": "SET search_path TO public",
    "set lower-case with comment": "/* hi */ set statement_timeout = 5000",
    "set local (strict)": "SET LOCAL lock_timeout = '1s'",
    "set session authorization": "SET SESSION AUTHORIZATION genjobs_app",
    "reset": "RESET ALL",
    "set_config false": "SELECT set_config('application_name', 'x', false)",
    "set_config parameter is_local": "SELECT set_config(%s, %s, %s)",
    "set_config nested call": "SELECT set_config('a', lower('B'), false), 1",
    "prepare": "PREPARE q(int) AS SELECT $1",
    "execute": "EXECUTE q(1)",
    "deallocate": "DEALLOCATE ALL",
    "discard": "DISCARD ALL",
    "listen": "LISTEN job_events",
    "unlisten": "UNLISTEN *",
    "load": "LOAD 'auto_explain'",
    "temp table": "CREATE TEMP TABLE t (id int)",
    "temporary table": "CREATE TEMPORARY TABLE IF NOT EXISTS t (id int)",
    "global temporary table": "CREATE GLOBAL TEMPORARY TABLE t (id int)",
    "temp sequence": "create temp sequence s",
    "temp view": "CREATE OR REPLACE TEMP VIEW v AS SELECT 1",
    "select into temp": "SELECT * INTO TEMP TABLE t FROM generation_jobs",
    "advisory lock": "SELECT pg_advisory_lock(42)",
    "advisory lock shared": "SELECT pg_advisory_lock_shared(1, 2)",
    "try advisory lock": "SELECT pg_try_advisory_lock(%s)",
    "try advisory lock shared": "select PG_TRY_ADVISORY_LOCK_SHARED(7)",
    "with hold cursor": "DECLARE c CURSOR WITH HOLD FOR SELECT 1",
    "second statement sets": "SELECT 1; SET TIME ZONE 'UTC'",
    "parenthesised": "(SELECT pg_advisory_lock(1))",
}

NOT_PINNING = {
    "select": "SELECT id FROM generation_jobs WHERE id = %s",
    "update ... set": "UPDATE generation_jobs SET status = 'failed', progress = 100 WHERE id = %s",
    "insert ... on conflict do update set": (
        "INSERT INTO merchants (id) VALUES (%s) ON CONFLICT (id) DO UPDATE SET updated_at = now()"
    ),
    "set in a string literal": "INSERT INTO job_events (details) VALUES ('SET search_path; LISTEN x; DISCARD ALL')",
    "escaped literal": r"SELECT E'it\'s; SET x = 1', 'doubled '' quote; RESET ALL'",
    "quoted identifier": 'SELECT "SET" FROM t',
    "set in a comment": "-- SET search_path = x\nSELECT 1",
    "xact advisory lock": "SELECT pg_advisory_xact_lock(%s)",
    "try xact advisory lock": "SELECT pg_try_advisory_xact_lock(%s, %s)",
    "advisory unlock": "SELECT pg_advisory_unlock_all()",
    "set_config local": "SELECT set_config('genjobs.merchant', %s, true)",
    "dollar-quoted body": "DO $body$ BEGIN EXECUTE 'SET x = 1'; PERFORM pg_advisory_lock(1); END $body$",
    "positional params are not dollar quotes": "SELECT $1::int + $2",
    "notify": "SELECT pg_notify('job_events', %s)",
    "declare without hold": "DECLARE c CURSOR FOR SELECT 1",
    "column named settings": "SELECT settings FROM t",
    "create table": "CREATE TABLE templates (id int)",
}


@pytest.mark.parametrize("statement", list(PINNING.values()), ids=list(PINNING))
def test_pinning_statements_are_caught(statement: str) -> None:
    assert pinning_reasons(statement), statement


@pytest.mark.parametrize("statement", list(NOT_PINNING.values()), ids=list(NOT_PINNING))
def test_ordinary_statements_pass(statement: str) -> None:
    assert pinning_reasons(statement) == []


def test_statements_over_16_kb_are_caught() -> None:
    big = "SELECT 1 WHERE 'x' <> '" + "y" * MAX_STATEMENT_BYTES + "'"
    assert pinning_reasons(big) == [f"statement text is {len(big)} bytes (> 16 KB)"]
    assert pinning_reasons("SELECT '" + "y" * (MAX_STATEMENT_BYTES - 20) + "'") == []


def test_split_statements_blanks_literals_and_drops_comments() -> None:
    assert split_statements("SELECT 'a;b'; /* x; */ SELECT $$c;d$$ ;") == ["SELECT ''", "SELECT $$ $$"]


def test_migration_files_are_exempt_but_nothing_else() -> None:
    guard = PinningGuard()
    for migration in load_migrations():
        guard(migration.sql, 1.0)
    guard("SELECT pg_advisory_xact_lock(1)", 1.0)
    assert guard.violations == []
    guard("SET search_path = public", 1.0)
    assert [statement for statement, _ in guard.violations] == ["SET search_path = public"]
    assert "SET changes session state" in guard.report()


def test_only_functional_and_e2e_tests_are_guarded() -> None:
    assert is_guarded(REPO_ROOT / "tests/functional/test_x.py", REPO_ROOT)
    assert is_guarded(REPO_ROOT / "tests/e2e/sub/test_y.py", REPO_ROOT)
    assert not is_guarded(REPO_ROOT / "tests/integration/test_x.py", REPO_ROOT)
    assert not is_guarded(REPO_ROOT / "tests/unit/test_functional.py", REPO_ROOT)
    assert not is_guarded(REPO_ROOT / "tests/test_no_pinning_plugin.py", REPO_ROOT)


def test_guard_sees_statements_sent_through_the_pool(db: Database) -> None:
    """End to end through the layer: InstrumentedCursor -> instrumentation observers -> classifier."""
    guard = PinningGuard()
    instrumentation.add(guard)
    try:
        db.fetch_value("SELECT 1")
        with db.transaction() as session:
            session.execute("SELECT pg_advisory_xact_lock(%s)", (1,))
            session.execute("SET LOCAL lock_timeout = '1s'")
    finally:
        instrumentation.remove(guard)
    assert guard.seen == 3
    assert [reasons for _, reasons in guard.violations] == [["SET changes session state"]]


INNER_CONFTEST = """
pytest_plugins = ["tests.support.pinning"]


def pytest_configure(config):
    config.addinivalue_line("markers", "allow_session_state: allowed")
"""

INNER_TEST = """
import pytest
from genjobs.db.instrumentation import instrumentation


def send(sql):
    for observer in list(instrumentation.observers):
        observer(sql, 0.1)


def test_pins():
    send("SELECT 1")
    send("SET search_path = public")


def test_clean():
    send("SELECT 1")


@pytest.mark.allow_session_state
def test_marked():
    send("LISTEN job_events")
"""


def test_plugin_fails_guarded_tests_only(tmp_path: Path) -> None:
    """Run pytest on a scratch project: the same pinning test fails under tests/functional and tests/e2e,
    passes under tests/unit and when marked allow_session_state."""
    (tmp_path / "conftest.py").write_text(INNER_CONFTEST)
    (tmp_path / "pytest.ini").write_text("[pytest]\n")
    for directory in ("functional", "e2e", "unit"):
        (tmp_path / "tests" / directory).mkdir(parents=True)
        (tmp_path / "tests" / directory / f"test_{directory}_sample.py").write_text(textwrap.dedent(INNER_TEST))
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(REPO_ROOT), str(REPO_ROOT / "layers" / "shared")])}
    result = subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "--rootdir", str(tmp_path),
         "-c", str(tmp_path / "pytest.ini"), "--import-mode=importlib", str(tmp_path)],
        cwd=tmp_path, env=env, capture_output=True, text=True, timeout=120, check=False,
    )
    output = result.stdout + result.stderr
    assert "2 failed, 7 passed" in output, output
    assert "FAILED tests/functional/test_functional_sample.py::test_pins" in output, output
    assert "FAILED tests/e2e/test_e2e_sample.py::test_pins" in output, output
    assert "SET changes session state: SET search_path = public" in output, output
    assert "test_marked" not in output.split("short test summary")[-1], output
