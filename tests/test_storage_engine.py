"""Every store opens its database the same way: what a path or URL means, and how connections behave."""

from __future__ import annotations

from pathlib import Path

import pytest

from circuit_host.errors import Rejected
from circuit_host.storage_engine import database_url, make_engine
from tests.conftest import require_postgres


def test_a_path_is_a_sqlite_file_and_postgresql_goes_through_psycopg(tmp_path: Path) -> None:
    assert database_url(tmp_path / "a.db") == f"sqlite:///{tmp_path / 'a.db'}"
    assert database_url("relative.db") == "sqlite:///relative.db"
    assert database_url("sqlite:///x.db") == "sqlite:///x.db"
    assert database_url("postgres://u@h/db") == "postgresql+psycopg://u@h/db"
    assert database_url("postgresql://u@h/db") == "postgresql+psycopg://u@h/db"
    with pytest.raises(Rejected, match=r"unsupported database URL scheme: 'mysql'"):
        database_url("mysql://u@h/db")


def test_sqlite_runs_in_wal_mode_from_any_thread_in_autocommit(tmp_path: Path) -> None:
    engine = make_engine(tmp_path / "a.db", busy_timeout=5)
    try:
        with engine.connect() as conn:
            assert conn.exec_driver_sql("PRAGMA journal_mode").scalar() == "wal"
            assert conn.exec_driver_sql("PRAGMA synchronous").scalar() == 1  # NORMAL: WAL syncs at checkpoints
            conn.exec_driver_sql("BEGIN IMMEDIATE")  # the stores run their own transactions
            conn.exec_driver_sql("COMMIT")
        assert engine.pool.status().startswith("Pool size: 8")
    finally:
        engine.dispose()


def test_sqlalchemy_managed_transactions_begin_as_asked(tmp_path: Path) -> None:
    engine = make_engine(tmp_path / "b.db", autocommit=False)
    try:
        with engine.execution_options(sqlite_begin="IMMEDIATE").begin() as conn:
            conn.exec_driver_sql("CREATE TABLE t (x INTEGER)")
            with conn.begin_nested():
                conn.exec_driver_sql("INSERT INTO t VALUES (1)")
        with engine.connect() as conn:
            assert conn.exec_driver_sql("SELECT x FROM t").all() == [(1,)]
    finally:
        engine.dispose()


def test_postgresql_connections_are_checked_before_use() -> None:
    engine = make_engine(require_postgres())
    try:
        assert engine.pool._pre_ping  # type: ignore[attr-defined]
        with engine.connect() as conn:
            assert conn.exec_driver_sql("SELECT 1").scalar() == 1
    finally:
        engine.dispose()
