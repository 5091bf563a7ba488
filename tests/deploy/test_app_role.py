"""sql/030_roles_and_timeouts.sql on the real (embedded) PostgreSQL: the least-privilege application role.

The request paths log in as genjobs_app (template.yaml, DB_USER); only the migrate function logs in as the
schema owner. These tests run against a clone of the migrated template database, as its owner (a superuser
here, the master user on Aurora), and act as genjobs_app with SET ROLE (privileges) or a real login (the
role-level settings apply at login).
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import psycopg
import pytest
from psycopg import errors as pg_errors
from psycopg.conninfo import conninfo_to_dict, make_conninfo

from tests.support.template import REPO_ROOT

MIGRATION = REPO_ROOT / "sql" / "030_roles_and_timeouts.sql"
APP_ROLE = "genjobs_app"
DML = ("SELECT", "INSERT", "UPDATE", "DELETE")
NOT_GRANTED = ("TRUNCATE", "REFERENCES", "TRIGGER")
EXPECTED_ROLE_SETTINGS = {
    "statement_timeout": "15s",
    "lock_timeout": "10s",
    "idle_in_transaction_session_timeout": "60s",
}


@pytest.fixture
def conn(database_url: str) -> Iterator[psycopg.Connection[tuple[object, ...]]]:
    with psycopg.connect(database_url) as connection:  # not autocommit: each test's changes roll back
        yield connection


def _app_tables(conn: psycopg.Connection[tuple[object, ...]]) -> list[str]:
    rows = conn.execute(
        "SELECT c.relname FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace "
        "WHERE n.nspname = 'public' AND c.relkind IN ('r', 'v', 'p') ORDER BY 1"
    ).fetchall()
    return [str(r[0]) for r in rows]


def test_the_role_exists_logs_in_and_has_no_special_attributes(conn: psycopg.Connection[tuple[object, ...]]) -> None:
    # Given the migrated database / When its roles are read
    row = conn.execute(
        "SELECT rolcanlogin, rolsuper, rolcreatedb, rolcreaterole, rolreplication, rolbypassrls, rolpassword IS NULL "
        "FROM pg_authid WHERE rolname = %s",
        (APP_ROLE,),
    ).fetchone()
    # Then genjobs_app can log in, has no password (IAM only) and no special power
    assert row == (True, False, False, False, False, False, True)


def test_the_role_owns_nothing(conn: psycopg.Connection[tuple[object, ...]]) -> None:
    owned = conn.execute(
        """
        WITH app AS (SELECT oid FROM pg_roles WHERE rolname = %(r)s)
        SELECT 'relation ' || relname FROM pg_class WHERE relowner = (SELECT oid FROM app)
        UNION ALL SELECT 'function ' || proname FROM pg_proc WHERE proowner = (SELECT oid FROM app)
        UNION ALL SELECT 'schema ' || nspname FROM pg_namespace WHERE nspowner = (SELECT oid FROM app)
        UNION ALL SELECT 'type ' || typname FROM pg_type WHERE typowner = (SELECT oid FROM app)
        UNION ALL SELECT 'database ' || datname FROM pg_database WHERE datdba = (SELECT oid FROM app)
        """,
        {"r": APP_ROLE},
    ).fetchall()
    assert owned == []


def test_the_role_has_dml_on_every_table_and_view_and_nothing_more(
    conn: psycopg.Connection[tuple[object, ...]],
) -> None:
    tables = _app_tables(conn)
    assert {"merchants", "generation_jobs", "job_events", "schema_migrations"} <= set(tables)
    missing: list[str] = []
    extra: list[str] = []
    for table in tables:
        for privilege in DML:
            granted = conn.execute("SELECT has_table_privilege(%s, %s, %s)", (APP_ROLE, table, privilege)).fetchone()
            wanted = privilege == "SELECT" or table != "schema_migrations"
            if granted != (wanted,):
                (missing if wanted else extra).append(f"{privilege} on {table}")
        for privilege in NOT_GRANTED:
            if conn.execute("SELECT has_table_privilege(%s, %s, %s)", (APP_ROLE, table, privilege)).fetchone() != (
                False,
            ):
                extra.append(f"{privilege} on {table}")
    assert not missing, missing
    assert not extra, extra
    schema = conn.execute(
        "SELECT has_schema_privilege(%s, 'public', 'USAGE'), has_schema_privilege(%s, 'public', 'CREATE'), "
        "has_database_privilege(%s, current_database(), 'CREATE')",
        (APP_ROLE, APP_ROLE, APP_ROLE),
    ).fetchone()
    assert schema == (True, False, False)


def test_rows_can_be_written_as_the_role_but_the_schema_cannot_change(
    conn: psycopg.Connection[tuple[object, ...]],
) -> None:
    # Given the session acts as genjobs_app
    conn.execute(f"SET ROLE {APP_ROLE}")
    # When it writes rows, Then that works (the job rules' triggers and functions included)
    conn.execute("INSERT INTO merchants (id, display_name) VALUES ('role-test', 'Role test')")
    conn.execute("UPDATE merchants SET display_name = 'changed' WHERE id = 'role-test'")
    assert conn.execute("SELECT display_name FROM merchants WHERE id = 'role-test'").fetchone() == ("changed",)
    conn.execute("DELETE FROM merchants WHERE id = 'role-test'")
    # When it tries DDL, Then every attempt is refused
    for ddl in (
        "CREATE TABLE role_test (id int)",
        "ALTER TABLE merchants ADD COLUMN role_test int",
        "DROP TABLE job_events",
        "TRUNCATE usage_ledger",
        "CREATE FUNCTION role_test() RETURNS int LANGUAGE sql AS 'SELECT 1'",
        "CREATE SCHEMA role_test",
        "INSERT INTO schema_migrations (version, name, checksum, duration_ms) VALUES (999, 'x', 'x', 0)",
    ):
        conn.execute("SAVEPOINT attempt")
        with pytest.raises(pg_errors.InsufficientPrivilege):
            conn.execute(ddl)
        conn.execute("ROLLBACK TO SAVEPOINT attempt")


def test_role_level_timeouts_are_set(conn: psycopg.Connection[tuple[object, ...]]) -> None:
    rows = conn.execute(
        "SELECT unnest(setconfig) FROM pg_db_role_setting "
        "WHERE setrole = (SELECT oid FROM pg_roles WHERE rolname = %s) AND setdatabase = 0",
        (APP_ROLE,),
    ).fetchall()
    settings = dict(str(r[0]).split("=", 1) for r in rows)
    assert settings == EXPECTED_ROLE_SETTINGS


def test_a_login_as_the_role_gets_the_timeouts(database_url: str) -> None:
    """The settings apply to real sessions of genjobs_app (the embedded server trusts local logins)."""
    params = conninfo_to_dict(database_url)
    params.pop("password", None)
    params["user"] = APP_ROLE
    with psycopg.connect(make_conninfo("", **params), autocommit=True) as app:
        assert app.execute("SELECT current_user").fetchone() == (APP_ROLE,)
        shown = {name: app.execute(f"SHOW {name}").fetchone() for name in EXPECTED_ROLE_SETTINGS}
        assert shown == {"statement_timeout": ("15s",), "lock_timeout": ("10s",),
                         "idle_in_transaction_session_timeout": ("1min",)}
        # and it really is cancelled past 15 s: a lower per-transaction value proves the mechanism quickly
        with pytest.raises(pg_errors.QueryCanceled), app.transaction():
            app.execute("SET LOCAL statement_timeout = '50ms'")
            app.execute("SELECT pg_sleep(1)")


def _run_migration(conn: psycopg.Connection[tuple[object, ...]], path: Path = MIGRATION) -> None:
    conn.execute(path.read_text(encoding="utf-8").encode("utf-8"))


def test_the_migration_is_idempotent(conn: psycopg.Connection[tuple[object, ...]]) -> None:
    # Given a migrated database / When 030 runs again (a second runner, a re-applied file)
    before = conn.execute("SELECT array_agg(x ORDER BY x) FROM (SELECT unnest(setconfig) x FROM pg_db_role_setting "
                          "WHERE setrole = (SELECT oid FROM pg_roles WHERE rolname = %s)) s", (APP_ROLE,)).fetchone()
    _run_migration(conn)
    _run_migration(conn)
    # Then it succeeds and changes nothing
    after = conn.execute("SELECT array_agg(x ORDER BY x) FROM (SELECT unnest(setconfig) x FROM pg_db_role_setting "
                         "WHERE setrole = (SELECT oid FROM pg_roles WHERE rolname = %s)) s", (APP_ROLE,)).fetchone()
    assert before == after
    test_the_role_owns_nothing(conn)


def test_the_migrating_role_gets_its_own_timeouts_for_this_database_only(
    conn: psycopg.Connection[tuple[object, ...]],
) -> None:
    # Given 030 run by this (owner) session in this database
    _run_migration(conn)
    rows = conn.execute(
        "SELECT CASE setdatabase WHEN 0 THEN 'cluster' "
        "WHEN (SELECT oid FROM pg_database WHERE datname = current_database()) THEN 'here' ELSE 'other' END, "
        "unnest(setconfig) "
        "FROM pg_db_role_setting WHERE setrole = (SELECT oid FROM pg_roles WHERE rolname = current_user)"
    ).fetchall()
    # Then the owner has lock_timeout 5s and statement_timeout 240s here, and no cluster-wide timeout
    here = {str(value) for scope, value in rows if scope == "here"}
    assert {"lock_timeout=5s", "statement_timeout=240s"} <= here
    cluster_wide = [str(v) for scope, v in rows if scope == "cluster" and str(v).endswith("_timeout")]
    assert not [v for v in cluster_wide if v.split("=")[0] in ("lock_timeout", "statement_timeout")]


def test_rds_iam_is_granted_only_where_it_exists(conn: psycopg.Connection[tuple[object, ...]]) -> None:
    member_of_rds_iam = (
        "SELECT count(*) FROM pg_auth_members m JOIN pg_roles r ON r.oid = m.roleid "
        "JOIN pg_roles u ON u.oid = m.member WHERE r.rolname = 'rds_iam' AND u.rolname = %s"
    )
    # Given plain PostgreSQL (no rds_iam role), Then nothing was granted (and 030 did not fail)
    assert conn.execute("SELECT count(*) FROM pg_roles WHERE rolname = 'rds_iam'").fetchone() == (0,)
    # Given an RDS-like server (the role exists; created in this transaction, rolled back after)
    conn.execute("CREATE ROLE rds_iam")
    # When 030 runs, Then genjobs_app is a member of rds_iam and the owner is not
    _run_migration(conn)
    assert conn.execute(member_of_rds_iam, (APP_ROLE,)).fetchone() == (1,)
    owner = conn.execute("SELECT current_user").fetchone()
    assert owner is not None
    assert conn.execute(member_of_rds_iam, (owner[0],)).fetchone() == (0,)


def test_the_migration_refuses_to_run_as_the_application_role(conn: psycopg.Connection[tuple[object, ...]]) -> None:
    conn.execute(f"SET ROLE {APP_ROLE}")
    with pytest.raises(pg_errors.RaiseException, match="must run as the schema owner"):
        _run_migration(conn)
