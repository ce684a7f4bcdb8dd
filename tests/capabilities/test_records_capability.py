"""records.query / records.dml as the guest sees them: charge first, shape errors are err."""

from __future__ import annotations

import time
from collections.abc import Iterator
from typing import Any

import msgpack
import pytest

from circuit_host.capabilities import records
from circuit_host.circuitdb import CircuitDB, FieldDef, FieldType
from circuit_host.connectors.records import DmlOp
from circuit_host.errors import DmlError, ExecutionTimeout, GuestFault, LimitExceeded, QueryError
from circuit_host.execution.context import ExecutionContext
from circuit_host.execution.limits import LimitsProfile
from tests.circuitdb.test_query_costs import SLOW_QUERY, seed_notes
from tests.contexts import make_context

INSERT, UPDATE, UPSERT, DELETE = "insert", "update", "upsert", "delete"  # the dml-op case names


@pytest.fixture
def context(any_records: CircuitDB) -> Iterator[ExecutionContext]:
    any_records.add_field("Contact", FieldDef("Legacy_Key__c", FieldType.TEXT, external_id=True))
    with make_context(any_records, LimitsProfile(dml_rows=5)) as made:
        yield made


def dml(context: ExecutionContext, op: str, rows: Any, object_name: str = "Contact") -> dict[str, Any]:
    return msgpack.unpackb(records.dml(context, op, object_name, msgpack.packb(rows)))  # type: ignore[no-any-return]


def query(context: ExecutionContext, soql: str, binds: Any = None) -> dict[str, Any]:
    payload = b"" if binds is None else msgpack.packb(binds)
    return msgpack.unpackb(records.query(context, soql, payload))  # type: ignore[no-any-return]


def test_insert_then_query_with_binds(context: ExecutionContext) -> None:
    inserted = dml(context, INSERT, [{"LastName": "Ng", "Email": "ng@acme.com"}, {"LastName": "Bo"}])
    assert inserted["created"] == [True, True]
    found = query(context, "SELECT LastName FROM Contact WHERE Id IN :ids", {"ids": inserted["ids"]})
    assert sorted(r["LastName"] for r in found["records"]) == ["Bo", "Ng"]
    assert found["total_size"] == 2
    assert context.governor.used("queries") == 1
    assert context.governor.used("query_rows") == 2


def test_upsert_by_external_id_field(context: ExecutionContext) -> None:
    [existing] = dml(context, INSERT, [{"LastName": "Ng", "Legacy_Key__c": "K-1"}])["ids"]
    result = dml(
        context,
        UPSERT,
        {
            "rows": [{"LastName": "Ng2", "Legacy_Key__c": "K-1"}, {"LastName": "New", "Legacy_Key__c": "K-2"}],
            "external_id": "Legacy_Key__c",
        },
    )
    assert result["created"] == [False, True]
    assert result["ids"][0] == existing


def test_upsert_on_a_field_that_is_not_an_external_id_is_a_dml_error(context: ExecutionContext) -> None:
    with pytest.raises(DmlError, match="Email is not an external id field"):
        dml(context, UPSERT, {"rows": [{"LastName": "X", "Email": "x@y.io"}], "external_id": "Email"})


@pytest.mark.parametrize(
    ("rows", "message"),
    [
        ({"rows": [], "batch": 1}, "unknown DML option"),
        ({"rows": [], "external_id": 5}, "external_id must be a field name"),
        ("not rows", "rows must be an array"),
        ([1], "row 0: must be a map"),
        ([{"LastName": [1, 2]}], "row 0: field LastName"),
        ([{"LastName": 2**64 - 1}], "int64"),
    ],
)
def test_dml_shape_errors_are_catchable(context: ExecutionContext, rows: Any, message: str) -> None:
    with pytest.raises(DmlError, match=message):
        dml(context, INSERT, rows)
    assert context.governor.used("dml_statements") == 1  # a failed statement still counts


def test_dml_rows_over_the_limit_traps_before_the_connector(context: ExecutionContext) -> None:
    with pytest.raises(LimitExceeded, match="dml_rows"):
        dml(context, INSERT, [{"LastName": f"L{i}"} for i in range(6)])
    assert query(context, "SELECT COUNT() FROM Contact")["total_size"] == 0


def test_update_of_a_missing_record_names_the_row(context: ExecutionContext) -> None:
    with pytest.raises(DmlError, match="row 0"):
        dml(context, UPDATE, [{"Id": "003000000000000AAA", "LastName": "x"}])


@pytest.mark.parametrize(
    ("binds", "message"),
    [([1, 2], "binds must be a msgpack map"), ({"x": {"a": 1}}, "bind :x must be a scalar"), ({"x": [[1]]}, "bind :x")],
)
def test_bad_binds_are_catchable(context: ExecutionContext, binds: Any, message: str) -> None:
    with pytest.raises(QueryError, match=message):
        query(context, "SELECT Id FROM Contact WHERE LastName = :x", binds)


def test_malformed_msgpack_from_the_guest_is_a_fault(context: ExecutionContext) -> None:
    with pytest.raises(GuestFault, match="malformed msgpack"):
        records.dml(context, INSERT, "Contact", b"\x92\x01")
    with pytest.raises(GuestFault, match="extension type"):
        records.query(context, "SELECT Id FROM Contact", b"\xd4\x01\x02")
    nested = b"\x91" * 100 + b"\xc0"
    with pytest.raises(GuestFault, match="nested deeper"):
        records.dml(context, INSERT, "Contact", nested)


# --- what a query may cost and say (issue 11, items 4, 12, 13) ----------------------------------


def test_a_query_past_the_deadline_ends_the_execution_as_a_timeout(any_records: CircuitDB) -> None:
    seed_notes(any_records)
    with make_context(any_records, LimitsProfile(timeout_ms=500)) as context:
        started = time.monotonic()
        with pytest.raises(ExecutionTimeout, match="500 ms reached during a query"):
            query(context, SLOW_QUERY)
        assert time.monotonic() - started < 1.5


def test_dml_is_cut_off_at_the_execution_deadline_and_writes_nothing(any_records: CircuitDB) -> None:
    # Checking and writing 80,000 rows takes about 1.3 s on a quiet 2-core machine: four times the limit.
    rows = [{"LastName": f"n{i}", "Email": f"n{i}@example.com", "Description": "d" * 100} for i in range(80_000)]
    with make_context(any_records, LimitsProfile(timeout_ms=300, dml_rows=100_000)) as context:
        context.records.dml(DmlOp.INSERT, "Contact", [{"LastName": "before"}])
        with pytest.raises(ExecutionTimeout, match="300 ms reached during DML"):
            dml(context, INSERT, rows)
        # The statement was undone; what the transaction held before it is still there.
        found = context.records.query("SELECT LastName FROM Contact", {}, 10).records
        assert [r["LastName"] for r in found] == ["before"]


def test_dml_after_the_deadline_is_refused_before_it_runs(any_records: CircuitDB) -> None:
    with make_context(any_records, LimitsProfile(timeout_ms=1)) as context:
        time.sleep(0.01)
        with pytest.raises(ExecutionTimeout, match="passed before the DML"):
            dml(context, INSERT, [{"LastName": "late"}])


def test_query_results_are_charged_in_bytes(any_records: CircuitDB) -> None:
    seed_notes(any_records, count=3, length=1_000)
    with make_context(any_records, LimitsProfile(query_bytes=2_500)) as context:
        one = records.query(context, "SELECT Body__c FROM Note__c LIMIT 1", b"")
        assert context.governor.used("query_bytes") == len(one)
        with pytest.raises(LimitExceeded, match="query_bytes"):
            query(context, "SELECT Body__c FROM Note__c")
        assert context.governor.used("query_bytes") == len(one)  # the refused result is not counted


def test_a_database_error_reaches_the_guest_without_sql_or_tables(any_records: CircuitDB) -> None:
    table = any_records.table_name("Contact")
    with any_records.engine.connect() as conn:  # as if another process dropped it
        conn.exec_driver_sql(f'DROP TABLE "{table}"')
    with make_context(any_records) as context:
        with pytest.raises(QueryError) as caught:
            query(context, "SELECT LastName FROM Contact")
        message = str(caught.value)
        assert message.startswith("query on Contact: ")
        assert "cdb_" not in message and "SELECT" not in message
