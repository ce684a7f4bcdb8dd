"""A guest's query is bounded like the rest of its execution (issue 11, items 4, 12, 13): cut off at
the deadline as ``timeout``, refused over ``query_bytes``, and a database error in the execution
record tells the guest's object, never the SQL or the ``cdb_`` table behind it."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import pytest

from circuit_host.circuitdb import CircuitDB
from circuit_host.connectors.http_client import HttpConnector
from circuit_host.execution.executions import ExecutionOptions, ExecutionRecord, Executor
from circuit_host.execution.limits import LimitsProfile
from circuit_host.sandbox.runtime import Runtime
from tests.circuitdb.test_query_costs import SLOW_QUERY, seed_notes

Load = Callable[[str], Any]


@pytest.fixture
def store_executor(runtime: Runtime, any_records: CircuitDB) -> Iterator[Executor]:
    http = HttpConnector()
    yield Executor(runtime, any_records, http)
    http.close()


def run_query(executor: Executor, load_guest: Load, soql: str, **limits: int) -> ExecutionRecord:
    options = ExecutionOptions(limits=LimitsProfile().with_overrides(limits))
    return executor.run(load_guest("query_proxy"), soql.encode(), options)


def test_a_pathological_like_ends_the_execution_as_a_timeout_near_its_deadline(
    store_executor: Executor, load_guest: Load, any_records: CircuitDB
) -> None:
    seed_notes(any_records)
    record = run_query(store_executor, load_guest, SLOW_QUERY, timeout_ms=1_000)
    assert record.status == "timeout", record.error
    assert record.error is not None and "during a query" in record.error["message"]
    assert record.duration_ms < 2_000
    assert run_query(store_executor, load_guest, "SELECT COUNT() FROM Note__c").output["total_size"] == 200


def test_a_result_over_query_bytes_is_limit_exceeded(
    store_executor: Executor, load_guest: Load, any_records: CircuitDB
) -> None:
    seed_notes(any_records, count=20, length=10_000)
    record = run_query(store_executor, load_guest, "SELECT Body__c FROM Note__c", query_bytes=100_000)
    assert record.status == "limit_exceeded", record.error
    assert record.error is not None and record.error["resource"] == "query_bytes"
    fits = run_query(store_executor, load_guest, "SELECT Body__c FROM Note__c LIMIT 5", query_bytes=100_000)
    assert fits.status == "ok" and fits.usage["query_bytes"].used > 50_000


def test_a_huge_result_stops_being_fetched_at_query_bytes(
    store_executor: Executor, load_guest: Load, any_records: CircuitDB
) -> None:
    seed_notes(any_records, count=300, length=100_000)  # 30 MB of records
    record = run_query(store_executor, load_guest, "SELECT Body__c FROM Note__c", query_bytes=1_000_000)
    assert record.error is not None and record.error["resource"] == "query_bytes"
    requested = int(record.error["message"].split("requested ")[1].split(",")[0])
    assert requested < 1_000_000 + 100_100  # counted up to the row that passed the budget, not 30 MB
    assert record.usage["query_bytes"].used == 0


def test_a_database_error_in_the_execution_record_names_no_sql_or_table(
    store_executor: Executor, load_guest: Load, any_records: CircuitDB
) -> None:
    table = any_records.table_name("Contact")
    with any_records.engine.connect() as conn:  # as if another process dropped it
        conn.exec_driver_sql(f'DROP TABLE "{table}"')
    record = run_query(store_executor, load_guest, "SELECT LastName FROM Contact WHERE LastName LIKE 'a%'")
    assert record.status == "error" and record.error is not None
    assert record.error["message"].startswith("query on Contact: the records store could not run it")
    shown = str(record.to_json())
    for leak in ("cdb_", table, "[SQL", "lower("):
        assert leak not in shown, leak
