"""CRM data access: SOQL queries and all-or-none DML. Records are plain dicts."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from . import _bindings
from .errors import DmlError, QueryError
from .msgpack import packb, unpackb

Record = dict[str, Any]

_OPS = {"insert": 0, "update": 1, "upsert": 2, "delete": 3, "undelete": 4}


class QueryResult(list[Record]):
    """The rows of a query (a list of dicts), plus ``total_size`` (rows matched, before LIMIT)."""

    total_size: int = 0


@dataclass(frozen=True)
class DmlResult:
    """One entry per row, in order: the record ids and whether each row was created."""

    ids: list[str]
    created: list[bool]


def query(soql: str, binds: Mapping[str, Any] | None = None, /, **named: Any) -> QueryResult:
    """Run one SOQL query; ``:name`` refers to a bind given as a dict or as keyword arguments.

    Raises ``QueryError`` for a bad query. Governor limits end the execution.
    """
    all_binds = {**(binds or {}), **named}
    ok, value = _bindings.unwrap(_bindings.interface("records").query, soql, packb(all_binds) if all_binds else b"")
    if not ok:
        raise QueryError(value)
    reply = unpackb(value)
    result = QueryResult(reply["records"])
    result.total_size = reply["total_size"]
    return result


def _dml(op: str, object_name: str, rows: Any) -> DmlResult:
    iface = _bindings.interface("records")
    enum = iface.DmlOp(_OPS[op]) if hasattr(iface, "DmlOp") else _OPS[op]
    ok, value = _bindings.unwrap(iface.dml, enum, object_name, packb(rows))
    if not ok:
        raise DmlError(value)
    reply = unpackb(value)
    return DmlResult(reply["ids"], reply["created"])


def _by_id(rows: Iterable[Record | str]) -> list[Record]:
    return [{"Id": row} if isinstance(row, str) else {"Id": row["Id"]} for row in rows]


def insert(object_name: str, rows: Iterable[Record]) -> DmlResult:
    """Create rows (without ``Id``)."""
    return _dml("insert", object_name, list(rows))


def update(object_name: str, rows: Iterable[Record]) -> DmlResult:
    """Change rows; every row carries ``Id``."""
    return _dml("update", object_name, list(rows))


def upsert(object_name: str, rows: Iterable[Record], external_id: str = "Id") -> DmlResult:
    """Insert or update, matching on ``external_id``."""
    payload: Any = list(rows) if external_id == "Id" else {"rows": list(rows), "external_id": external_id}
    return _dml("upsert", object_name, payload)


def delete(object_name: str, rows: Iterable[Record | str]) -> DmlResult:
    """Move rows (records or ids) to the recycle bin."""
    return _dml("delete", object_name, _by_id(rows))


def undelete(object_name: str, rows: Iterable[Record | str]) -> DmlResult:
    """Restore rows (records or ids) from the recycle bin."""
    return _dml("undelete", object_name, _by_id(rows))
