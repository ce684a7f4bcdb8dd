"""CircuitDB fixtures: every test runs on SQLite and on PostgreSQL, in a tenant of its own.

PostgreSQL comes from CIRCUIT_TEST_POSTGRES_URL (default: the local test server). When it is
unreachable the PostgreSQL tests skip, unless CIRCUIT_REQUIRE_POSTGRES=1 (CI), which fails them.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa

from circuit_host.circuitdb import CircuitDB, CircuitTransaction
from circuit_host.circuitdb.store import drop_tenant
from circuit_host.connectors.records import DmlOp, RecordsTransaction
from circuit_host.errors import DmlError, QueryError
from tests.conftest import require_postgres


def database_url(backend: str, tmp_path: Path) -> str:
    if backend == "sqlite":
        return f"sqlite:///{tmp_path / 'circuitdb.sqlite3'}"
    return require_postgres()


def new_tenant() -> str:
    return f"test-{uuid.uuid4().hex[:12]}"


@pytest.fixture(params=["sqlite", "postgresql"])
def backend(request: pytest.FixtureRequest) -> str:
    return str(request.param)


@pytest.fixture
def url(backend: str, tmp_path: Path) -> str:
    return database_url(backend, tmp_path)


@pytest.fixture
def open_db(url: str) -> Iterator[Callable[..., CircuitDB]]:
    """Opens stores on the test's database; every tenant they used is dropped afterwards."""
    opened: list[CircuitDB] = []

    def open_one(tenant: str | None = None, **kw: Any) -> CircuitDB:
        db = CircuitDB(url, tenant or new_tenant(), **kw)
        opened.append(db)
        return db

    yield open_one
    for db in opened:
        db.close()
    engine = sa.create_engine(url, isolation_level="AUTOCOMMIT", poolclass=sa.pool.NullPool)
    try:
        for tenant in {db.tenant for db in opened}:
            drop_tenant(engine, tenant)
    finally:
        engine.dispose()


@pytest.fixture
def store(open_db: Callable[..., CircuitDB]) -> CircuitDB:
    return open_db()


@pytest.fixture(scope="module", params=["sqlite", "postgresql"])
def module_store(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Iterator[CircuitDB]:
    """One tenant per module and backend, for tests that never commit (see ``tx``)."""
    db = CircuitDB(database_url(str(request.param), tmp_path_factory.mktemp("db")), new_tenant())
    yield db
    db.drop_tenant()


@pytest.fixture
def tx(module_store: CircuitDB) -> Iterator[CircuitTransaction]:
    """A transaction that is rolled back after the test: it sees only what the test wrote."""
    with module_store.begin() as transaction:
        yield transaction


# --- helpers ------------------------------------------------------------------------------


def insert(tx: RecordsTransaction, object_name: str, *rows: dict[str, Any]) -> list[str]:
    return tx.dml(DmlOp.INSERT, object_name, list(rows)).ids


def rows(tx: RecordsTransaction, soql: str, **binds: Any) -> list[dict[str, Any]]:
    return tx.query(soql, binds, 1000).records


def dml_error(tx: RecordsTransaction, op: DmlOp, object_name: str, data: list[Any], **kw: Any) -> str:
    with pytest.raises(DmlError) as info:
        tx.dml(op, object_name, data, **kw)
    return str(info.value)


def query_error(tx: RecordsTransaction, soql: str, **binds: Any) -> str:
    with pytest.raises(QueryError) as info:
        tx.query(soql, binds, 1000)
    return str(info.value)
