"""On PostgreSQL every records store in a process shares one engine, so the process's connections
are bounded by one pool however many tenant environments it serves; SQLite files keep one each."""

from __future__ import annotations

from pathlib import Path

import sqlalchemy as sa

from circuit_host.circuitdb import CircuitDB
from circuit_host.connectors.records import DmlOp
from circuit_host.storage_engine import POSTGRES_POOL

from .conftest import database_url, new_tenant

TENANTS = 12


def connections_to(url: str, database: str) -> int:
    probe = sa.create_engine(url.replace("postgresql://", "postgresql+psycopg://", 1), poolclass=sa.pool.NullPool)
    try:
        with probe.connect() as conn:
            query = "SELECT count(*) FROM pg_stat_activity WHERE datname = %(db)s AND pid <> pg_backend_pid()"
            return int(conn.exec_driver_sql(query, {"db": database}).scalar_one())
    finally:
        probe.dispose()


def test_many_tenant_stores_on_postgresql_hold_one_pool_of_connections(tmp_path: Path) -> None:
    url = database_url("postgresql", tmp_path)
    database = sa.engine.make_url(url).database
    assert database is not None
    baseline = connections_to(url, database)
    stores = [CircuitDB(url, new_tenant()) for _ in range(TENANTS)]
    try:
        assert len({id(store.engine) for store in stores}) == 1
        for n, store in enumerate(stores):
            with store.begin() as tx:
                tx.dml(DmlOp.INSERT, "Account", [{"Name": f"tenant {n}"}])
                tx.commit()
        held = connections_to(url, database) - baseline
        assert held <= POSTGRES_POOL["pool_size"], held  # one per store before: 12 idle connections at least
        stores[0].close()  # the others keep working on the shared engine
        for n, store in enumerate(stores[1:], start=1):
            with store.begin() as tx:
                names = [r["Name"] for r in tx.query("SELECT Name FROM Account", {}, 10).records]
            assert names == [f"tenant {n}"]  # each store still sees only its own tenant
    finally:
        for store in stores:
            store.drop_tenant()
            store.close()
    assert connections_to(url, database) - baseline <= 0  # the last store disposed the pool


def test_sqlite_files_each_keep_an_engine_of_their_own(tmp_path: Path) -> None:
    first = CircuitDB(f"sqlite:///{tmp_path / 'a.sqlite3'}", new_tenant())
    second = CircuitDB(f"sqlite:///{tmp_path / 'b.sqlite3'}", new_tenant())
    try:
        assert first.engine is not second.engine
    finally:
        first.close()
        second.close()
