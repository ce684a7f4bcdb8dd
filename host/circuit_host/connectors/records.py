"""The records seam: what the ``records`` capability needs from a CRM data store.

A connector hands out transactions, one per execution. Everything an execution reads or
writes goes through its transaction, and nothing it writes is visible to others before
``commit()``. Guest-facing failures are ``QueryError`` and ``DmlError``.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from contextlib import AbstractContextManager
from dataclasses import dataclass, field
from enum import IntEnum
from typing import Any, Protocol

from ..errors import CircuitError


class DmlOp(IntEnum):
    """The ABI's ``dml-op`` enum; the values are the lowered i32."""

    INSERT = 0
    UPDATE = 1
    UPSERT = 2
    DELETE = 3
    UNDELETE = 4


class QueryTimeout(CircuitError):
    """A query (or a DML statement) ran past the ``timeout_ms`` it was given and was cut off.

    Not catchable: the caller says what the time was (the execution's deadline, an endpoint's limit).
    """

    kind = "query_timeout"


class QueryTooLarge(CircuitError):
    """A query's records passed the ``max_bytes`` it was given; fetching stopped there.

    Not catchable: the caller charges it (``query_bytes``). ``size`` is what was counted.
    """

    kind = "query_too_large"

    def __init__(self, message: str, size: int) -> None:
        super().__init__(message)
        self.size = size


def encoded_size_floor(value: Any) -> int:
    """A lower bound of ``value``'s msgpack size, cheap enough to take per fetched row: every value
    takes at least one byte, and a string at least one per character."""
    if isinstance(value, dict):
        return 1 + sum(encoded_size_floor(k) + encoded_size_floor(v) for k, v in value.items())
    if isinstance(value, (list, tuple)):
        return 1 + sum(encoded_size_floor(item) for item in value)
    if isinstance(value, (str, bytes)):
        return 1 + len(value)
    return 1


@dataclass
class QueryResult:
    """Records with exactly the selected fields plus ``Id``; for ``COUNT()`` no records."""

    records: list[dict[str, Any]] = field(default_factory=list)
    total_size: int = 0


@dataclass
class DmlResult:
    """One id and one created flag per input row, in input order."""

    ids: list[str] = field(default_factory=list)
    created: list[bool] = field(default_factory=list)


class RecordsTransaction(Protocol):
    """One execution's unit of work. ``commit``, ``rollback`` and ``close`` end it."""

    def query(
        self,
        soql: str,
        binds: Mapping[str, Any],
        max_rows: int,
        timeout_ms: int | None = None,
        max_bytes: int | None = None,
    ) -> QueryResult:
        """Run one SOQL query, returning at most ``max_rows + 1`` records.

        The extra record lets the caller detect that the governor's row limit would be
        exceeded without the store ever loading an unbounded result. A query still running
        after ``timeout_ms`` (None: no limit) is cut off with ``QueryTimeout``; a store that
        fetches rows counts them as it goes and stops with ``QueryTooLarge`` once their
        ``encoded_size_floor`` passes ``max_bytes`` (None: no limit).
        """
        ...

    def dml(
        self,
        op: DmlOp,
        object_name: str,
        rows: Sequence[Mapping[str, Any]],
        external_id: str = "Id",
        timeout_ms: int | None = None,
    ) -> DmlResult:
        """Run one all-or-none DML statement; ``DmlError`` names the row index and field. A
        statement still running after ``timeout_ms`` (None: no limit) is cut off and undone with
        ``QueryTimeout``."""
        ...

    def seed(self, object_name: str, rows: Sequence[Mapping[str, Any]]) -> list[str]:
        """Host only: save records as given (keeping any Id) before a trigger runs on them."""
        ...

    def fetch(self, object_name: str, ids: Sequence[str]) -> list[dict[str, Any]]:
        """Host only, not charged: every field of these records (deleted ones too, with
        ``IsDeleted``), in the order of ``ids``; ids not found are skipped.

        Triggers use it for ``old`` values and for the saved rows an after-trigger sees.
        """
        ...

    def savepoint(self) -> AbstractContextManager[None]:
        """A nested all-or-none scope: an exception inside it undoes the scope's writes and
        propagates; leaving it normally keeps them (still uncommitted)."""
        ...

    def commit(self) -> None: ...

    def rollback(self) -> None: ...

    def close(self) -> None:
        """Roll back unless committed and release the transaction; idempotent."""
        ...


class DelegatingTransaction:
    """A ``RecordsTransaction`` that hands every call to ``inner``: the base of a wrapper that changes
    one part (the triggers' DML, a CRM's statement for a change it already saved) and keeps the rest."""

    def __init__(self, inner: RecordsTransaction) -> None:
        self.inner = inner

    def query(
        self,
        soql: str,
        binds: Mapping[str, Any],
        max_rows: int,
        timeout_ms: int | None = None,
        max_bytes: int | None = None,
    ) -> QueryResult:
        return self.inner.query(soql, binds, max_rows, timeout_ms, max_bytes)

    def dml(
        self,
        op: DmlOp,
        object_name: str,
        rows: Sequence[Mapping[str, Any]],
        external_id: str = "Id",
        timeout_ms: int | None = None,
    ) -> DmlResult:
        return self.inner.dml(op, object_name, rows, external_id, timeout_ms)

    def seed(self, object_name: str, rows: Sequence[Mapping[str, Any]]) -> list[str]:
        return self.inner.seed(object_name, rows)

    def fetch(self, object_name: str, ids: Sequence[str]) -> list[dict[str, Any]]:
        return self.inner.fetch(object_name, ids)

    def savepoint(self) -> AbstractContextManager[None]:
        return self.inner.savepoint()

    def commit(self) -> None:
        self.inner.commit()

    def rollback(self) -> None:
        self.inner.rollback()

    def close(self) -> None:
        self.inner.close()


class RecordsConnector(Protocol):
    """A records store; ``begin()`` may be called from any thread."""

    def begin(self) -> RecordsTransaction: ...

    def close(self) -> None:
        """Release the store's resources; idempotent."""
        ...
