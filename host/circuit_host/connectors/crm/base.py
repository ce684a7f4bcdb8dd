"""What the CRM transactions share: the outbox writer, DML row checks, and read-your-writes for ``fetch``.

Reads go to the CRM, so a ``query`` does not see the execution's own queued writes (the CRM
has not received them). ``fetch`` does: it overlays the transaction's pending inserts,
updates and deletes on what the CRM returns, because triggers need the rows as saved.
"""

from __future__ import annotations

import copy
import math
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

from ...errors import DmlError
from ...soql.parser import IDENTIFIER, INT64_MAX, INT64_MIN, Scalar
from ..records import DmlOp, DmlResult, QueryResult
from .outbox import Operation, Outbox, OutboxWriter
from .provisional import is_provisional, new_provisional_id

READ_ONLY_FIELDS = frozenset({"createddate", "lastmodifieddate", "isdeleted", "systemmodstamp"})


def shown(value: object) -> str:
    """A guest-supplied value for an error message, cut short."""
    text = repr(value)
    return text if len(text) <= 60 else text[:57] + "..."


def check_object(object_name: object) -> str:
    if not isinstance(object_name, str) or not IDENTIFIER.fullmatch(object_name):
        raise DmlError(f"invalid object name {shown(object_name)}")
    return object_name


def check_row(index: int, row: object) -> dict[str, Scalar]:
    """One DML row: identifier field names (unique ignoring case), scalar values, no system fields."""
    if not isinstance(row, Mapping):
        raise DmlError(f"row {index}: expected a map of field names to values")
    checked: dict[str, Scalar] = {}
    seen: dict[str, str] = {}
    for name, value in row.items():
        if not isinstance(name, str) or not IDENTIFIER.fullmatch(name):
            raise DmlError(f"row {index}: invalid field name {shown(name)}")
        if name.lower() in seen:
            raise DmlError(f"row {index}: field {name}: duplicate of field {seen[name.lower()]}")
        seen[name.lower()] = name
        if name.lower() in READ_ONLY_FIELDS:
            raise DmlError(f"row {index}: field {name}: is not writeable")
        ok = value is None or isinstance(value, bool | str)
        ok = ok or (isinstance(value, int) and INT64_MIN <= value <= INT64_MAX)
        ok = ok or (isinstance(value, float) and math.isfinite(value))
        if not ok:
            raise DmlError(f"row {index}: field {name}: unsupported value {shown(value)}")
        checked["Id" if name.lower() == "id" else name] = value
    return checked


@dataclass
class _Pending:
    """This transaction's not-yet-sent changes to one record, for ``fetch``."""

    object_name: str
    fields: dict[str, Scalar] = field(default_factory=dict)
    created: bool = False
    deleted: bool | None = None


class OutboxTransaction:
    """Lifecycle, savepoints and DML bookkeeping; subclasses talk to their CRM."""

    crm = "crm"

    def __init__(self, outbox: Outbox, tenant: str) -> None:
        self.outbox = outbox
        self.tenant = tenant
        self.writer: OutboxWriter = outbox.writer(tenant, self.crm)
        self._pending: dict[str, _Pending] = {}

    # --- lifecycle -------------------------------------------------------------------------

    def commit(self) -> None:
        self.writer.commit()

    def rollback(self) -> None:
        self.writer.rollback()

    def close(self) -> None:
        self.writer.rollback()

    def __enter__(self) -> OutboxTransaction:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    @contextmanager
    def savepoint(self) -> Iterator[None]:
        saved = copy.deepcopy(self._pending)
        try:
            with self.writer.savepoint():
                yield
        except BaseException:
            self._pending = saved
            raise

    # --- bookkeeping for subclasses ----------------------------------------------------------

    def queue(
        self,
        operation: Operation,
        object_name: str,
        rows: Sequence[dict[str, Scalar]],
        provisional: Sequence[str | None] | None = None,
        external_id: str | None = None,
        ids: Sequence[str] | None = None,
    ) -> None:
        """Queue one statement and remember its effect for ``fetch`` under ``ids`` (default:
        each row's provisional id or Id)."""
        provisional = list(provisional) if provisional is not None else [None] * len(rows)
        self.writer.add(operation, object_name, rows, provisional, external_id)
        for index, (row, new_id) in enumerate(zip(rows, provisional, strict=True)):
            record_id = ids[index] if ids is not None else new_id or row.get("Id")
            if not isinstance(record_id, str):
                continue
            pending = self._pending.setdefault(record_id, _Pending(object_name, created=new_id is not None))
            if operation in ("delete", "undelete"):
                pending.deleted = operation == "delete"
            else:
                pending.fields.update({k: v for k, v in row.items() if k != "Id"})

    def real_ids(self, values: Sequence[object]) -> dict[str, str]:
        """Provisional ids among ``values`` whose insert an earlier execution already sent."""
        return self.outbox.real_ids(self.tenant, [v for v in values if isinstance(v, str)])

    @staticmethod
    def new_ids(object_name: str, count: int) -> list[str]:
        return [new_provisional_id(object_name) for _ in range(count)]

    @staticmethod
    def required_ids(rows: Sequence[dict[str, Scalar]], what: str) -> list[str]:
        """Every row's Id (a string, not repeated within the statement)."""
        ids: list[str] = []
        seen: dict[str, int] = {}
        for index, row in enumerate(rows):
            record_id = row.get("Id")
            if not isinstance(record_id, str) or not record_id:
                raise DmlError(f"row {index}: field Id: required for {what}")
            if not (record_id.isascii() and record_id.isalnum() and len(record_id) <= 64):
                raise DmlError(f"row {index}: field Id: {shown(record_id)} is not a record id")
            if record_id in seen:
                raise DmlError(f"row {index}: field Id: duplicate of row {seen[record_id]}")
            seen[record_id] = index
            ids.append(record_id)
        return ids

    def overlay(self, ids: Sequence[str], fetched: Mapping[str, dict[str, Any]]) -> list[dict[str, Any]]:
        """``fetch``'s answer: the CRM's records (keyed by the ids asked for) with pending changes applied."""
        records: list[dict[str, Any]] = []
        for record_id in ids:
            pending = self._pending.get(record_id)
            base = fetched.get(record_id)
            if base is None and (pending is None or not pending.created):
                continue
            record: dict[str, Any] = dict(base or {})
            if pending is not None:
                for name, value in pending.fields.items():  # field names ignore case, as in SOQL
                    for existing in [k for k in record if k.lower() == name.lower() and k != name]:
                        del record[existing]
                    record[name] = value
                if pending.deleted is not None:
                    record["IsDeleted"] = pending.deleted
            record["Id"] = record_id
            record.setdefault("IsDeleted", False)
            records.append(record)
        return records

    def seed(self, object_name: str, rows: Sequence[Mapping[str, Any]]) -> list[str]:
        """Records a trigger runs on: with an Id they are already in the CRM and are only
        remembered for ``fetch``; without one they are queued for insert."""
        object_name = check_object(object_name)
        checked = [check_row(i, row) for i, row in enumerate(rows)]
        ids: list[str] = []
        for row in checked:
            record_id = row.get("Id")
            if isinstance(record_id, str):
                pending = self._pending.setdefault(record_id, _Pending(object_name))
                pending.fields.update({k: v for k, v in row.items() if k != "Id"})
                ids.append(record_id)
            else:
                ids.extend(self.dml(DmlOp.INSERT, object_name, [row]).ids)
        return ids

    def dml(
        self,
        op: DmlOp,
        object_name: str,
        rows: Sequence[Mapping[str, Any]],
        external_id: str = "Id",
        timeout_ms: int | None = None,
    ) -> DmlResult:
        raise NotImplementedError

    def query(
        self,
        soql: str,
        binds: Mapping[str, Any],
        max_rows: int,
        timeout_ms: int | None = None,
        max_bytes: int | None = None,
    ) -> QueryResult:
        raise NotImplementedError


def all_provisional(values: Sequence[object]) -> list[str]:
    return [v for v in values if isinstance(v, str) and is_provisional(v)]
