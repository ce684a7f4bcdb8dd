"""What a query may cost and say: cut off at its time limit, LIKE patterns bounded, and a database
error told in the tenant's terms, never with the SQL or the ``cdb_`` tables behind it (issue 11,
items 4 and 13)."""

from __future__ import annotations

import time
from collections.abc import Callable

import msgpack
import pytest
import sqlalchemy as sa
from structlog.testing import capture_logs

from circuit_host.circuitdb import CircuitDB, CircuitTransaction, FieldDef, FieldType
from circuit_host.connectors.records import DmlOp, QueryTimeout, QueryTooLarge, encoded_size_floor
from circuit_host.soql.parser import MAX_LIKE_PATTERN_LENGTH, MAX_LIKE_PATTERNS_LENGTH

from .conftest import dml_error, insert, query_error, rows

# "%aaa…a" against values of only "a": every start position compares the whole pattern before
# failing, so each row costs pattern x value length (about 30 ms here, 6 s for the 200 rows).
SLOW_PATTERN = "%" + "a" * (MAX_LIKE_PATTERN_LENGTH - 2) + "b"
SLOW_QUERY = f"SELECT COUNT() FROM Note__c WHERE Body__c LIKE '{SLOW_PATTERN}'"
LEAKS = ("cdb_", "SELECT", "FROM", "WHERE", "%(", "[SQL", "param")


def seed_notes(db: CircuitDB, count: int = 200, length: int = 100_000) -> None:
    db.define_object("Note__c", fields=[FieldDef("Body__c", FieldType.TEXT, length=131_072)])
    with db.begin() as tx:
        tx.seed("Note__c", [{"Name": f"n{i}", "Body__c": "a" * length} for i in range(count)])
        tx.commit()


def assert_tells_nothing_internal(message: str, db: CircuitDB) -> None:
    for leak in (*LEAKS, db.table_name("Account")):
        assert leak not in message, message


# --- time ------------------------------------------------------------------------------------


def test_a_pathological_like_is_cut_off_at_its_time_limit(store: CircuitDB) -> None:
    seed_notes(store)
    with store.begin() as tx:
        started = time.monotonic()
        with pytest.raises(QueryTimeout, match="300 ms"):
            tx.query(SLOW_QUERY, {}, 10, timeout_ms=300)
        assert time.monotonic() - started < 1.3
        # The transaction carries on: the cut-off statement took nothing else with it.
        assert tx.query("SELECT COUNT() FROM Note__c", {}, 10, timeout_ms=300).total_size == 200
        assert tx.query("SELECT COUNT() FROM Note__c WHERE Body__c LIKE 'a%'", {}, 10).total_size == 200


def test_a_query_within_its_time_limit_is_not_disturbed(tx: CircuitTransaction) -> None:
    insert(tx, "Account", {"Name": "Acme"})
    for _ in range(20):
        assert tx.query("SELECT Name FROM Account", {}, 10, timeout_ms=5_000).total_size == 1
    assert tx.query("SELECT Name FROM Account", {}, 10, timeout_ms=50).total_size == 1
    time.sleep(0.1)  # past the last limit: it must not linger into later statements
    insert(tx, "Account", {"Name": "Bolt"})
    assert len(rows(tx, "SELECT Name FROM Account")) == 2


def test_no_time_left_is_a_timeout_before_the_database_is_asked(tx: CircuitTransaction) -> None:
    with pytest.raises(QueryTimeout):
        tx.query("SELECT Id FROM Account", {}, 10, timeout_ms=0)


# --- LIKE patterns ----------------------------------------------------------------------------


def test_an_oversized_like_pattern_is_refused(tx: CircuitTransaction) -> None:
    insert(tx, "Account", {"Name": "a" * 250})
    longest = "%" * MAX_LIKE_PATTERN_LENGTH
    assert len(rows(tx, f"SELECT Id FROM Account WHERE Name LIKE '{longest}'")) == 1
    assert len(rows(tx, "SELECT Id FROM Account WHERE Name LIKE :p", p=longest)) == 1
    too_long = longest + "%"
    for message in (
        query_error(tx, f"SELECT Id FROM Account WHERE Name LIKE '{too_long}'"),
        query_error(tx, "SELECT Id FROM Account WHERE Name LIKE :p", p=too_long),
    ):
        assert f"LIKE pattern of {MAX_LIKE_PATTERN_LENGTH + 1} characters" in message
        assert "column" in message  # it points at the pattern


def test_the_like_patterns_of_one_query_are_bounded_together(tx: CircuitTransaction) -> None:
    pattern = "%" * MAX_LIKE_PATTERN_LENGTH
    count = MAX_LIKE_PATTERNS_LENGTH // MAX_LIKE_PATTERN_LENGTH
    allowed = " OR ".join([f"Name LIKE '{pattern}'"] * count)
    assert rows(tx, f"SELECT Id FROM Account WHERE {allowed}") == []
    message = query_error(tx, f"SELECT Id FROM Account WHERE {allowed} OR Name LIKE :p", p="%")
    assert f"total over {MAX_LIKE_PATTERNS_LENGTH} characters" in message


def test_includes_terms_count_against_the_like_budget(store: CircuitDB) -> None:
    store.add_field("Account", FieldDef("Tags__c", FieldType.PICKLIST, values=("Red", "Blue"), multi=True))
    with store.begin() as tx:
        insert(tx, "Account", {"Name": "Acme", "Tags__c": "Red;Blue"})
        assert len(rows(tx, "SELECT Id FROM Account WHERE Tags__c INCLUDES :t", t=["Red", "Green;Blue"])) == 1
        many = ["x" * 99 + str(n % 10) for n in range(MAX_LIKE_PATTERNS_LENGTH // 100 + 1)]
        message = query_error(tx, "SELECT Id FROM Account WHERE Tags__c INCLUDES :t", t=many)
        assert f"total over {MAX_LIKE_PATTERNS_LENGTH} characters" in message


# --- database errors ----------------------------------------------------------------------------


def test_a_database_error_names_the_object_but_no_sql_or_table(store: CircuitDB, url: str) -> None:
    """Another process dropped a table behind the store's back: the driver's message names it."""
    insert_committed(store, "Account", {"Name": "Acme"})
    hidden = sa.create_engine(url, isolation_level="AUTOCOMMIT", poolclass=sa.pool.NullPool)
    try:
        with hidden.connect() as conn:
            conn.exec_driver_sql(f'DROP TABLE "{store.table_name("Account")}"')
    finally:
        hidden.dispose()
    with store.begin() as tx, capture_logs() as logs:
        message = query_error(tx, "SELECT Name FROM Account WHERE Name = 'Acme'")
        assert message.startswith("query on Account: the records store could not run it (reference ")
        assert_tells_nothing_internal(message, store)
        # The detail stays in the server log, under the reference the error gives.
        [logged] = [e for e in logs if e["event"] == "records store error"]
        assert logged["reference"] in message and store.table_name("Account") in logged["statement"]
        # A failed statement does not abort the transaction (on PostgreSQL it would, without its savepoint).
        assert rows(tx, "SELECT Id FROM Contact") == []
        message = dml_error(tx, DmlOp.INSERT, "Account", [{"Name": "Bolt"}])
        assert message.startswith("DML on Account: ")
        assert_tells_nothing_internal(message, store)


def insert_committed(db: CircuitDB, object_name: str, *records: dict[str, str]) -> None:
    with db.begin() as tx:
        insert(tx, object_name, *records)
        tx.commit()


def test_a_value_the_database_refuses_is_a_clean_error(tx: CircuitTransaction, module_store: CircuitDB) -> None:
    """PostgreSQL cannot hold NUL in text; SQLite can (and then simply finds nothing)."""
    nul = "a\x00b"
    checks: list[Callable[[], str]] = [
        lambda: query_error(tx, "SELECT Id FROM Account WHERE Name = :v", v=nul),
        lambda: query_error(tx, "SELECT Id FROM Account WHERE Name IN :v", v=[nul]),
        lambda: query_error(tx, "SELECT Id FROM Account WHERE Name LIKE :v", v=nul),
    ]
    if module_store.dialect == "sqlite":
        assert rows(tx, "SELECT Id FROM Account WHERE Name = :v", v=nul) == []
        return
    for check in checks:
        message = check()
        assert "a text value contains a NUL character" in message
        assert_tells_nothing_internal(message, module_store)
    message = dml_error(tx, DmlOp.INSERT, "Account", [{"Name": nul}])
    assert message.startswith("DML on Account: a text value contains a NUL character")
    assert_tells_nothing_internal(message, module_store)
    assert rows(tx, "SELECT Id FROM Account") == []


def test_a_number_list_may_mix_integers_and_fractions(tx: CircuitTransaction) -> None:
    insert(tx, "Account", {"Name": "Acme", "NumberOfEmployees": 5}, {"Name": "Bolt", "NumberOfEmployees": 7})
    found = rows(tx, "SELECT Name FROM Account WHERE NumberOfEmployees IN :n ORDER BY Name", n=[5, 2.5, 7.0])
    assert [r["Name"] for r in found] == ["Acme", "Bolt"]


# --- size ------------------------------------------------------------------------------------


def test_a_huge_result_stops_at_its_byte_budget_instead_of_loading_whole(store: CircuitDB) -> None:
    seed_notes(store, count=300, length=100_000)  # 30 MB of records
    with store.begin() as tx:
        with pytest.raises(QueryTooLarge) as info:
            tx.query("SELECT Name, Body__c FROM Note__c", {}, 1_000, max_bytes=1_000_000)
        assert 1_000_000 < info.value.size < 1_000_000 + 100_100  # stopped at the row that passed it
        # The transaction carries on, and the same query within its budget returns every record.
        result = tx.query("SELECT Name, Body__c FROM Note__c", {}, 1_000, max_bytes=40_000_000)
        assert result.total_size == 300


def test_the_byte_budget_is_a_floor_of_what_the_records_encode_to(tx: CircuitTransaction) -> None:
    insert(tx, "Account", {"Name": "Acmé"}, {"Name": "Bolt"})
    result = tx.query("SELECT Id, Name FROM Account", {}, 10)
    encoded = len(msgpack.packb(result.records))
    assert sum(encoded_size_floor(r) for r in result.records) <= encoded
    with pytest.raises(QueryTooLarge):
        tx.query("SELECT Id, Name FROM Account", {}, 10, max_bytes=encoded // 2)


def test_the_byte_budget_counts_each_record_as_encoded_size_floor_does(tx: CircuitTransaction) -> None:
    """The store counts a record's keys once per query; the sum must still be exactly the floor."""
    insert(tx, "Account", {"Name": "Acmé", "NumberOfEmployees": 5, "Website": None}, {"Name": "Bolt"})
    soql = "SELECT Name, NumberOfEmployees, Website, CreatedDate, IsDeleted, Owner.LastName FROM Account"
    result = tx.query(soql, {}, 10)
    floor = sum(encoded_size_floor(r) for r in result.records)
    assert len(result.records) == 2 and "Id" in result.records[0]
    tx.query(soql, {}, 10, max_bytes=floor)  # exactly the floor fits
    with pytest.raises(QueryTooLarge) as info:
        tx.query(soql, {}, 10, max_bytes=floor - 1)
    assert info.value.size == floor


def test_a_dml_past_its_time_limit_is_cut_off_and_undone(store: CircuitDB) -> None:
    store.define_object("Note__c", fields=[FieldDef("Body__c", FieldType.TEXT, length=131_072)])
    with store.begin() as tx:
        insert(tx, "Account", {"Name": "Acme"})
        rows_ = [{"Name": f"n{i}", "Body__c": "a" * 1_000} for i in range(2_000)]
        if store.dialect == "sqlite":  # each row is its own short statement: the progress handler stops them
            with pytest.raises(QueryTimeout, match="DML on Note__c: still running after 1 ms"):
                tx.dml(DmlOp.INSERT, "Note__c", rows_, timeout_ms=1)
        with pytest.raises(QueryTimeout, match="no time left"):
            tx.dml(DmlOp.INSERT, "Note__c", rows_, timeout_ms=0)
        assert tx.query("SELECT COUNT() FROM Note__c", {}, 10).total_size == 0
        assert [r["Name"] for r in rows(tx, "SELECT Name FROM Account")] == ["Acme"]
        assert tx.dml(DmlOp.INSERT, "Note__c", rows_[:10], timeout_ms=5_000).created == [True] * 10


def test_a_dml_waiting_on_a_locked_row_is_cut_off_at_its_time_limit(open_db: Callable[..., CircuitDB]) -> None:
    store = open_db()
    if store.dialect == "sqlite":
        pytest.skip("SQLite locks the whole file at the first write, before any statement runs")
    with store.begin() as tx:
        (account,) = insert(tx, "Account", {"Name": "Acme"})
        tx.commit()
    with store.begin() as holder, store.begin() as waiter:
        holder.dml(DmlOp.UPDATE, "Account", [{"Id": account, "Name": "Held"}])  # keeps the row locked
        started = time.monotonic()
        with pytest.raises(QueryTimeout, match="still running after 300 ms"):
            waiter.dml(DmlOp.UPDATE, "Account", [{"Id": account, "Name": "Waiting"}], timeout_ms=300)
        assert time.monotonic() - started < 1.5


@pytest.mark.parametrize("backend", ["postgresql"])  # SQLite: one progress handler, one deadline (above)
def test_the_statements_of_one_dml_share_its_time_limit(open_db: Callable[..., CircuitDB]) -> None:
    """Every row's UPDATE takes 120 ms here (a database trigger that sleeps), under the 400 ms limit
    each, but ten of them do not fit in it: the DML is cut off at 400 ms in all, not 400 ms each."""
    store = open_db()
    with store.begin() as tx:
        ids = insert(tx, "Account", *({"Name": f"a{i}"} for i in range(10)))
        tx.commit()
    table = store.table_name("Account")
    with store.engine.begin() as conn:
        conn.exec_driver_sql(
            "CREATE FUNCTION cs_test_slow_row() RETURNS trigger LANGUAGE plpgsql AS "
            "$$ BEGIN PERFORM pg_sleep(0.12); RETURN NEW; END $$"
        )
        conn.exec_driver_sql(
            f'CREATE TRIGGER cs_test_slow BEFORE UPDATE ON "{table}" FOR EACH ROW EXECUTE FUNCTION cs_test_slow_row()'
        )
    try:
        with store.begin() as tx:
            started = time.monotonic()
            with pytest.raises(QueryTimeout):
                tx.dml(DmlOp.UPDATE, "Account", [{"Id": i, "Name": "slow"} for i in ids], timeout_ms=400)
            assert time.monotonic() - started < 0.9  # ten rows would take 1.2 s
            assert {r["Name"] for r in rows(tx, "SELECT Name FROM Account")} == {f"a{i}" for i in range(10)}
            updated = tx.dml(DmlOp.UPDATE, "Account", [{"Id": ids[0], "Name": "one"}], timeout_ms=400)
            assert updated.ids == [ids[0]]  # a DML within its limit still runs after the cut-off one
    finally:
        with store.engine.begin() as conn:
            conn.exec_driver_sql(f'DROP TRIGGER cs_test_slow ON "{table}"')
            conn.exec_driver_sql("DROP FUNCTION cs_test_slow_row()")
