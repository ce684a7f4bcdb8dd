"""The governor charges before the connector: the call over the limit never reaches it."""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

from circuit_host.circuitdb import open_store
from circuit_host.connectors.http_client import HttpConnector
from circuit_host.connectors.records import DmlOp, DmlResult, QueryResult, RecordsTransaction
from circuit_host.execution.executions import ExecutionOptions, Executor
from circuit_host.execution.limits import LimitsProfile
from circuit_host.sandbox.runtime import Runtime


class CountingRecords:
    """A real SQLite store that counts the queries that reach it."""

    def __init__(self, path: Path) -> None:
        self.store = open_store(path)
        self.queries_seen = 0

    def begin(self) -> RecordsTransaction:
        outer = self
        inner = self.store.begin()

        class Counting:
            def query(
                self,
                soql: str,
                binds: Mapping[str, Any],
                max_rows: int,
                timeout_ms: int | None = None,
                max_bytes: int | None = None,
            ) -> QueryResult:
                outer.queries_seen += 1
                return inner.query(soql, binds, max_rows, timeout_ms, max_bytes)

            def dml(
                self,
                op: DmlOp,
                object_name: str,
                rows: Sequence[Mapping[str, Any]],
                external_id: str = "Id",
                timeout_ms: int | None = None,
            ) -> DmlResult:
                return inner.dml(op, object_name, rows, external_id, timeout_ms)

            def seed(self, object_name: str, rows: Sequence[Mapping[str, Any]]) -> list[str]:
                return inner.seed(object_name, rows)

            def commit(self) -> None:
                inner.commit()

            def rollback(self) -> None:
                inner.rollback()

            def close(self) -> None:
                inner.close()

        return Counting()

    def close(self) -> None:
        self.store.close()


def test_the_101st_query_traps_and_the_connector_saw_exactly_100(
    runtime: Runtime, load_guest: Callable[[str], Any], tmp_path: Path
) -> None:
    records = CountingRecords(tmp_path / "r.db")
    executor = Executor(runtime, records, HttpConnector())
    record = executor.run(load_guest("query_loop"), 101)
    assert record.status == "limit_exceeded"
    assert record.error["resource"] == "queries"
    assert "used 100" in record.error["message"]
    assert records.queries_seen == 100
    assert record.usage["queries"].used == 100

    records.queries_seen = 0
    within = executor.run(load_guest("query_loop"), 100)
    assert within.status == "ok"
    assert records.queries_seen == 100
    records.close()


def test_query_rows_limit_counts_returned_rows(
    runtime: Runtime, load_guest: Callable[[str], Any], tmp_path: Path
) -> None:
    records = open_store(tmp_path / "r.db")
    tx = records.begin()
    tx.seed("Contact", [{"LastName": f"L{i}"} for i in range(30)])
    tx.commit()
    tx.close()
    executor = Executor(runtime, records, HttpConnector())
    limits = LimitsProfile(query_rows=25)
    over = executor.run(load_guest("query_proxy"), b"SELECT Id FROM Contact", ExecutionOptions(limits=limits))
    assert over.status == "limit_exceeded"
    assert over.error["resource"] == "query_rows"
    under = executor.run(load_guest("query_proxy"), b"SELECT Id FROM Contact LIMIT 25", ExecutionOptions(limits=limits))
    assert under.status == "ok"
    assert len(under.output["records"]) == 25
    assert under.usage["query_rows"].used == 25
    records.close()


def test_bad_soql_is_a_catchable_err_not_a_trap(executor: Executor, load_guest: Callable[[str], Any]) -> None:
    record = executor.run(load_guest("query_proxy"), b"SELECT Id FORM Contact")
    # query_proxy forwards the import's err as its own: the guest received err, did not trap.
    assert record.status == "error"
    assert record.error["kind"] == "guest_error"
    assert "expected FROM" in record.error["message"]
    assert record.usage["queries"].used == 1
