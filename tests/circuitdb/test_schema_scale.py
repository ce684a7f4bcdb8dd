"""Schema application at scale: its work grows linearly, and a tenant environment's schema is capped.

Work is counted, not timed: the Python function calls ``apply_schema`` makes (``cProfile``'s call
count, which saw the old per-definition rebuild of the whole schema) and the SQL statements it sends
(a SQLAlchemy event listener). Timings are in ``benchmarks/bench_schema.py``.
"""

from __future__ import annotations

import cProfile
import pstats
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa

from circuit_host.circuitdb import CircuitDB, FieldDef, FieldType, SchemaChanges, open_store
from circuit_host.circuitdb.schema import (
    CEILING_CUSTOM_FIELDS_PER_OBJECT,
    MAX_CUSTOM_FIELDS_PER_OBJECT,
    MAX_CUSTOM_OBJECTS,
    SchemaLimits,
    custom_object,
)
from circuit_host.circuitdb.tables import begin_migration
from circuit_host.connectors.records import DmlOp
from circuit_host.errors import Rejected
from tests.circuitdb.conftest import new_tenant


def wide_schema(objects: int, fields_per_object: int = 3, on_contact: int = 0) -> SchemaChanges:
    """``objects`` custom objects, each with a few fields and a reference to the previous one, and
    ``on_contact`` custom fields on Contact."""
    declared = []
    for i in range(objects):
        fields = [FieldDef(f"F{j}__c", FieldType.TEXT) for j in range(fields_per_object)]
        if i:
            fields.append(FieldDef("Previous__c", FieldType.REFERENCE, reference_to=(f"Obj{i - 1}__c",)))
        declared.append(custom_object(f"Obj{i}__c", "", fields=fields))
    extra = tuple(("Contact", FieldDef(f"Extra{i}__c", FieldType.NUMBER, scale=0)) for i in range(on_contact))
    return SchemaChanges(objects=tuple(declared), fields=extra)


def work_of(db: CircuitDB, changes: SchemaChanges) -> tuple[int, int]:
    """(Python function calls, SQL statements) that applying ``changes`` takes."""
    statements: list[str] = []

    def count(_conn: Any, _cursor: Any, statement: str, *_rest: Any) -> None:
        statements.append(statement)

    sa.event.listen(db.engine, "before_cursor_execute", count)
    profile = cProfile.Profile()
    try:
        profile.enable()
        db.apply_schema(changes)
        profile.disable()
    finally:
        sa.event.remove(db.engine, "before_cursor_execute", count)
    return pstats.Stats(profile).total_calls, len(statements)  # type: ignore[attr-defined]


@pytest.fixture
def sqlite_db(tmp_path: Path) -> Iterator[Callable[[], CircuitDB]]:
    """Stores on SQLite files of their own (the work counted is the same on PostgreSQL)."""
    opened: list[CircuitDB] = []

    def open_one() -> CircuitDB:
        opened.append(open_store(tmp_path / f"records-{len(opened)}.sqlite3", tenant=new_tenant()))
        return opened[-1]

    yield open_one
    for db in opened:
        db.close()


def test_applying_a_schema_takes_work_linear_in_its_definitions(sqlite_db: Callable[[], CircuitDB]) -> None:
    """Four times the objects and fields take about four times the work, first apply and re-apply alike
    (the old merge rebuilt the whole schema per definition: sixteen times)."""
    sizes = (50, 100, 200)
    first: list[tuple[int, int]] = []
    again: list[tuple[int, int]] = []
    for n in sizes:
        db = sqlite_db()
        changes = wide_schema(n, on_contact=n)
        first.append(work_of(db, changes))
        again.append(work_of(db, changes))  # a redeploy of the same bundle
        assert len([o for o in db.schema.objects if o.custom]) == n
    for runs in (first, again):
        (calls_small, statements_small), _, (calls_large, statements_large) = runs
        assert calls_large / calls_small < 4.6, runs
        assert statements_large / statements_small < 4.6, runs


def test_a_schema_change_stays_small_in_a_large_schema(sqlite_db: Callable[[], CircuitDB]) -> None:
    """Adding one field takes as many statements in a schema of 25 objects as in one of 200."""
    costs = []
    for n in (25, 200):
        db = sqlite_db()
        db.apply_schema(wide_schema(n))
        calls, statements = work_of(db, SchemaChanges(fields=(("Obj0__c", FieldDef("Late__c", FieldType.TEXT)),)))
        costs.append((calls, statements))
    (calls_small, statements_small), (calls_large, statements_large) = costs
    assert statements_large == statements_small
    # Reading the stored definitions is linear in the schema; only the changed object's table is rebuilt.
    assert calls_large / calls_small < 200 / 25 * 0.8, costs


# --- caps --------------------------------------------------------------------------------


def test_the_default_caps_are_an_operators_defaults() -> None:
    assert SchemaLimits() == SchemaLimits(MAX_CUSTOM_OBJECTS, MAX_CUSTOM_FIELDS_PER_OBJECT) == SchemaLimits(500, 500)
    assert CEILING_CUSTOM_FIELDS_PER_OBJECT < 1600 - 100  # PostgreSQL's columns per table, with room for Contact's


def test_custom_objects_past_the_cap_are_rejected_and_nothing_changes(open_db: Callable[..., CircuitDB]) -> None:
    db = open_db(schema_limits=SchemaLimits(max_custom_objects=3))
    db.apply_schema(wide_schema(3))
    with pytest.raises(
        Rejected, match=r"4 custom objects would exceed this environment's limit of 3 \(max_custom_objects\)"
    ):
        db.apply_schema(wide_schema(4))
    with pytest.raises(Rejected, match="max_custom_objects"):
        db.define_object("Another__c")
    assert db.refresh() is False  # nothing was stored
    assert sorted(o.name for o in db.schema.objects if o.custom) == ["Obj0__c", "Obj1__c", "Obj2__c"]
    with db.engine.connect() as conn:
        tables = set(sa.inspect(conn).get_table_names())
    assert db.table_name("Obj2__c") in tables and not any(t.endswith("_obj3__c") for t in tables)
    db.apply_schema(wide_schema(3))  # a redeploy of what exists is not growth


def test_custom_fields_past_the_cap_are_rejected_on_custom_and_standard_objects(
    open_db: Callable[..., CircuitDB],
) -> None:
    db = open_db(schema_limits=SchemaLimits(max_custom_fields_per_object=4))
    db.apply_schema(wide_schema(2, fields_per_object=3))  # Obj1__c: three fields and Previous__c
    with pytest.raises(Rejected, match=r"object Obj1__c: 5 custom fields would exceed the limit of 4 per object"):
        db.add_field("Obj1__c", FieldDef("One_Too_Many__c", FieldType.TEXT))
    db.add_field("Obj0__c", FieldDef("Fourth__c", FieldType.TEXT))  # Obj0__c had three
    with pytest.raises(Rejected, match=r"object Contact: 5 custom fields .* \(max_custom_fields_per_object\)"):
        db.apply_schema(wide_schema(0, on_contact=5))
    assert db.schema.object("Contact").field("Extra0__c") is None  # type: ignore[union-attr]
    with pytest.raises(Rejected, match="object Big__c: 5 custom fields"):
        db.define_object("Big__c", fields=[FieldDef(f"F{i}__c", FieldType.TEXT) for i in range(5)])
    assert db.schema.object("Big__c") is None
    with db.begin() as tx:  # the store still works
        tx.dml(DmlOp.INSERT, "Obj0__c", [{"Name": "kept", "Fourth__c": "x"}])
        tx.commit()


def test_a_lowered_cap_keeps_what_exists_and_stops_growth(open_db: Callable[..., CircuitDB]) -> None:
    db = open_db()
    db.apply_schema(wide_schema(4, fields_per_object=2))
    lowered = SchemaLimits(max_custom_objects=2, max_custom_fields_per_object=1)
    db.apply_schema(wide_schema(4, fields_per_object=2), lowered)  # the same schema, redeployed
    with pytest.raises(Rejected, match="max_custom_fields_per_object"):
        db.apply_schema(SchemaChanges(fields=(("Obj0__c", FieldDef("New__c", FieldType.TEXT)),)), lowered)
    with pytest.raises(Rejected, match="max_custom_objects"):
        db.apply_schema(wide_schema(5, fields_per_object=2), lowered)


def test_the_store_applies_its_own_caps_unless_given_others(open_db: Callable[..., CircuitDB]) -> None:
    db = open_db(schema_limits=SchemaLimits(max_custom_objects=1))
    with pytest.raises(Rejected, match="limit of 1"):
        db.apply_schema(wide_schema(2))
    db.apply_schema(wide_schema(2), SchemaLimits(max_custom_objects=2))
    assert db.schema.object("Obj1__c") is not None


# --- migrations of different tenants --------------------------------------------------------


@pytest.fixture
def held_migration(url: str, backend: str) -> Iterator[Callable[[str], None]]:
    """Takes a tenant's migration lock on a connection of its own and holds it until the test ends."""
    engine = sa.create_engine(url, isolation_level="AUTOCOMMIT", poolclass=sa.pool.NullPool)
    held: list[sa.engine.Connection] = []

    def hold(tenant: str) -> None:
        conn = engine.connect()
        held.append(conn)
        begin_migration(conn, tenant)

    yield hold
    for conn in held:
        conn.exec_driver_sql("ROLLBACK")
        conn.close()
    engine.dispose()


def test_on_postgresql_one_tenants_migration_does_not_hold_up_anothers(
    backend: str, open_db: Callable[..., CircuitDB], held_migration: Callable[[str], None]
) -> None:
    """A long schema change of one tenant (its lock held) while another tenant opens its store and
    adds an object in the same database. (On SQLite the lock is the file's: tenants get a file each.)"""
    if backend != "postgresql":
        pytest.skip("on SQLite each tenant environment has a file of its own; see tests/server/test_records_files.py")
    busy = new_tenant()
    open_db(busy)
    held_migration(busy)
    done: list[CircuitDB] = []

    def other_tenant() -> None:
        db = open_db()
        db.define_object("Quick__c")
        done.append(db)

    worker = threading.Thread(target=other_tenant, daemon=True)
    started = time.monotonic()
    worker.start()
    worker.join(timeout=10)
    assert done and done[0].schema.object("Quick__c") is not None, "the other tenant waited on the lock"
    assert time.monotonic() - started < 10
