"""``make_context()``: an execution context over real parts, for tests that call the sandbox or a
capability directly instead of going through an ``Executor``."""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from contextlib import AbstractContextManager, contextmanager
from typing import Any

from circuit_host.circuitdb import CircuitDB
from circuit_host.connectors.http_client import HttpConnector
from circuit_host.connectors.records import DmlOp, DmlResult, QueryResult
from circuit_host.execution.callout_policy import CalloutSession, HostPattern
from circuit_host.execution.context import ExecutionContext
from circuit_host.execution.execution_log import ExecutionLog
from circuit_host.execution.governor import Governor
from circuit_host.execution.limits import LimitsProfile
from tests.conftest import LOOPBACK_NETWORKS


class NoRecords:
    """The records of a context whose test must not touch any: every call fails the test."""

    def _refuse(self, what: str) -> Any:
        raise AssertionError(f"this test's context has no records store, but the guest called {what}")

    def query(
        self,
        soql: str,
        binds: Mapping[str, Any],
        max_rows: int,
        timeout_ms: int | None = None,
        max_bytes: int | None = None,
    ) -> QueryResult:
        return self._refuse("query")  # type: ignore[no-any-return]

    def dml(
        self,
        op: DmlOp,
        object_name: str,
        rows: Sequence[Mapping[str, Any]],
        external_id: str = "Id",
        timeout_ms: int | None = None,
    ) -> DmlResult:
        return self._refuse("dml")  # type: ignore[no-any-return]

    def seed(self, object_name: str, rows: Sequence[Mapping[str, Any]]) -> list[str]:
        return self._refuse("seed")  # type: ignore[no-any-return]

    def fetch(self, object_name: str, ids: Sequence[str]) -> list[dict[str, Any]]:
        return self._refuse("fetch")  # type: ignore[no-any-return]

    def savepoint(self) -> AbstractContextManager[None]:
        return self._refuse("savepoint")  # type: ignore[no-any-return]

    def commit(self) -> None:
        pass

    def rollback(self) -> None:
        pass

    def close(self) -> None:
        pass


@contextmanager
def make_context(
    records: CircuitDB | None = None,
    limits: LimitsProfile | None = None,
    label: str = "test",
    allowed_hosts: tuple[HostPattern, ...] = (),
) -> Iterator[ExecutionContext]:
    """A fresh governor and log, a records transaction rolled back afterwards (``NoRecords`` without
    a store), and callouts through a real HTTP connector limited to ``allowed_hosts``."""
    http = HttpConnector(allowed_networks=LOOPBACK_NETWORKS)
    transaction = records.begin() if records is not None else NoRecords()
    governor = Governor(limits or LimitsProfile())
    try:
        yield ExecutionContext(
            governor=governor,
            log=ExecutionLog(label, governor),
            records=transaction,
            http=CalloutSession(http, allowed_hosts),
        )
    finally:
        transaction.rollback()
        transaction.close()
        http.close()
