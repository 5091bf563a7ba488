"""The layer's query helpers, pool behaviour and failure handling, on a real PostgreSQL."""

from __future__ import annotations

import logging
import threading
import time
from dataclasses import dataclass
from decimal import Decimal

import psycopg
import pytest
from genjobs.db import Database, record_statements
from genjobs.errors import DatabaseTimeout
from pydantic import BaseModel

from tests.support.database import make_database


@dataclass
class MerchantRow:
    id: str
    hourly_generation_limit: int | None


class ModelPrice(BaseModel):
    model_id: str
    unit_price_usd: Decimal


def test_fetch_one_returns_typed_rows_from_parameterized_sql(db: Database) -> None:
    # Given a merchant with a limit override
    db.execute("INSERT INTO merchants (id, hourly_generation_limit) VALUES (%s, %s)", ("acme", 7))

    # When it is read back as a dataclass, a pydantic model and a dict
    as_dataclass = db.fetch_one("SELECT id, hourly_generation_limit FROM merchants WHERE id = %s",
                                ("acme",), row=MerchantRow)
    as_model = db.fetch_one("SELECT model_id, unit_price_usd FROM model_configurations WHERE model_id = %(m)s",
                            {"m": "amazon.nova-canvas-v1:0"}, row=ModelPrice)
    as_dict = db.fetch_one("SELECT id FROM merchants WHERE id = %s", ("acme",))

    # Then each has the right type and values
    assert as_dataclass == MerchantRow(id="acme", hourly_generation_limit=7)
    assert as_model == ModelPrice(model_id="amazon.nova-canvas-v1:0", unit_price_usd=Decimal("0.04"))
    assert as_dict == {"id": "acme"}


def test_parameters_are_never_interpolated(db: Database) -> None:
    # Given a value that would be an injection if it were pasted into the SQL text
    hostile = "x'); DROP TABLE merchants; --"

    # When it goes through the helpers as a parameter
    db.execute("INSERT INTO merchants (id) VALUES (%s)", (hostile,))

    # Then it is stored verbatim and the table is still there
    assert db.fetch_all("SELECT id FROM merchants") == [{"id": hostile}]


def test_fetch_all_and_execute_rowcount(db: Database) -> None:
    db.execute("INSERT INTO merchants (id) SELECT 'm' || g FROM generate_series(1, 5) g")
    updated = db.execute("UPDATE merchants SET hourly_generation_limit = 3 WHERE id IN (%s, %s)", ("m1", "m2"))
    rows = db.fetch_all("SELECT id FROM merchants WHERE hourly_generation_limit = %s ORDER BY id", (3,),
                        row=MerchantRowIdOnly)
    assert updated == 2
    assert [r.id for r in rows] == ["m1", "m2"]
    assert db.fetch_value("SELECT count(*) FROM merchants") == 5
    assert db.fetch_one("SELECT id FROM merchants WHERE id = %s", ("nobody",)) is None


@dataclass
class MerchantRowIdOnly:
    id: str


def test_transaction_that_fails_midway_leaves_nothing_behind(db: Database) -> None:
    # Given a transaction that writes a row and then fails on a constraint
    with pytest.raises(psycopg.errors.CheckViolation), db.transaction() as tx:
        tx.execute("INSERT INTO merchants (id) VALUES (%s)", ("half-written",))
        tx.execute("INSERT INTO merchants (id, hourly_generation_limit) VALUES (%s, %s)", ("bad", -1))

    # Then neither row exists and the pooled connection is usable again
    assert db.fetch_value("SELECT count(*) FROM merchants") == 0
    with db.transaction() as tx:
        tx.execute("INSERT INTO merchants (id) VALUES (%s)", ("after",))
    assert db.fetch_value("SELECT count(*) FROM merchants") == 1


def test_transaction_rolls_back_on_python_exception(db: Database) -> None:
    with pytest.raises(RuntimeError), db.transaction() as tx:
        tx.execute("INSERT INTO merchants (id) VALUES (%s)", ("gone",))
        raise RuntimeError("boom")
    assert db.fetch_value("SELECT count(*) FROM merchants WHERE id = 'gone'") == 0


def test_terminated_backend_between_requests_does_not_fail_the_next_request(database_url: str) -> None:
    # Given a warm pooled connection (idle check far away, so only the socket poll can notice)
    database = make_database(database_url, idle_check_seconds=3600)
    try:
        pid = database.fetch_value("SELECT pg_backend_pid()")
        # When the server terminates it between two requests (as the proxy or a restart would)
        with psycopg.connect(database_url, autocommit=True) as admin:
            assert admin.execute("SELECT pg_terminate_backend(%s)", (pid,)).fetchone() == (True,)
            wait_until_backend_gone(admin, pid)
        # Then the next request succeeds, on a new backend
        with record_statements() as recorder:
            new_pid = database.fetch_value("SELECT pg_backend_pid()")
        assert new_pid != pid
        # and the liveness ping was paid only because the socket showed the server's goodbye
        assert recorder.statements == ["", "SELECT pg_backend_pid()"]
    finally:
        database.close()


def wait_until_backend_gone(admin: psycopg.Connection[tuple[object, ...]], pid: int) -> None:
    deadline = time.monotonic() + 10
    while admin.execute("SELECT count(*) FROM pg_stat_activity WHERE pid = %s", (pid,)).fetchone() != (0,):
        assert time.monotonic() < deadline, "terminated backend did not exit"


def test_warm_requests_pay_no_liveness_round_trip(database_url: str) -> None:
    database = make_database(database_url, idle_check_seconds=3600)
    try:
        database.fetch_value("SELECT 1")
        with record_statements() as recorder:
            for _ in range(5):
                database.fetch_value("SELECT 1")
        assert recorder.statements == ["SELECT 1"] * 5
    finally:
        database.close()


def test_connection_idle_past_threshold_is_pinged_before_use(database_url: str) -> None:
    database = make_database(database_url, idle_check_seconds=0)
    try:
        database.fetch_value("SELECT 1")
        with record_statements() as recorder:
            database.fetch_value("SELECT 2")
        assert recorder.statements == ["", "SELECT 2"]
    finally:
        database.close()


def test_statement_timeout_becomes_database_timeout(database_url: str, pg_cluster) -> None:
    # Given statement_timeout set on the database (as it is set on the role in AWS, never per session)
    dbname = psycopg.conninfo.conninfo_to_dict(database_url)["dbname"]
    with pg_cluster.admin() as admin:
        admin.execute(psycopg.sql.SQL("ALTER DATABASE {} SET statement_timeout = '50ms'").format(
            psycopg.sql.Identifier(str(dbname))))
    database = make_database(database_url)
    try:
        with pytest.raises(DatabaseTimeout):
            database.fetch_value("SELECT pg_sleep(1)")
        assert database.fetch_value("SELECT 42") == 42
    finally:
        database.close()


def test_slow_queries_are_logged_as_warnings(database_url: str, caplog: pytest.LogCaptureFixture) -> None:
    database = make_database(database_url, slow_query_ms=0.0)
    try:
        with caplog.at_level(logging.WARNING, logger="genjobs.db"):
            database.fetch_value("SELECT %s::int", (7,))
        assert any("slow query" in r.message and "SELECT" in r.message for r in caplog.records)
    finally:
        database.close()
        make_database(database_url)  # restores the default slow-query threshold for later tests


def test_pool_serves_concurrent_threads_within_its_size(database_url: str) -> None:
    database = make_database(database_url, pool_max_size=3)
    pids: list[int] = []
    lock = threading.Lock()
    barrier = threading.Barrier(6)

    def work() -> None:
        barrier.wait()
        pid = database.fetch_value("SELECT pg_backend_pid() FROM pg_sleep(0.02)")
        with lock:
            pids.append(pid)

    try:
        threads = [threading.Thread(target=work) for _ in range(6)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        assert len(pids) == 6
        assert 1 <= len(set(pids)) <= 3
    finally:
        database.close()
