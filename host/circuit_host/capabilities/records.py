"""``records.query`` and ``records.dml``: charge, then forward to the execution's transaction."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from ..abi.codec import decode, encode
from ..connectors.records import DmlOp, QueryTimeout, QueryTooLarge
from ..errors import DmlError, ExecutionTimeout, LimitExceeded, QueryError
from ..execution.context import ExecutionContext
from ..soql.parser import IDENTIFIER

_SCALARS = (type(None), bool, int, float, str)
_INT64 = range(-(2**63), 2**63)


def _is_value(value: Any) -> bool:
    """A record or bind value: nil, bool, int64, float or str."""
    if isinstance(value, int) and not isinstance(value, bool):
        return value in _INT64
    return isinstance(value, _SCALARS)


def query(context: ExecutionContext, soql: str, binds_payload: bytes) -> bytes:
    governor = context.governor
    governor.charge("queries")
    binds = decode(binds_payload, "records.query binds") if binds_payload else None
    if binds is None:
        binds = {}
    if not isinstance(binds, dict):
        raise QueryError("binds must be a msgpack map of name to value")
    for name, value in binds.items():
        items = value if isinstance(value, list) else [value]
        if not all(_is_value(item) for item in items):
            raise QueryError(f"bind :{name} must be a scalar (nil, bool, int64, float, str) or a list of them")
    # The deadline cannot interrupt a host call, so the query gets the time left as its own limit.
    time_left = governor.time_left_ms()
    if time_left <= 0:
        raise ExecutionTimeout("execution deadline passed before the query")
    with context.log.timed("QUERY", soql, {"db.query.text": soql}) as span:
        try:
            result = context.records.query(
                soql,
                binds,
                max_rows=governor.remaining("query_rows"),
                timeout_ms=time_left,
                max_bytes=governor.remaining("query_bytes"),  # the store stops fetching past it
            )
        except QueryTimeout:
            raise ExecutionTimeout(
                f"wall-clock deadline of {governor.limit('timeout_ms')} ms reached during a query"
            ) from None
        except QueryTooLarge as exc:
            used = governor.used("query_bytes")
            raise LimitExceeded("query_bytes", used, exc.size, governor.limit("query_bytes")) from None
        span.rows = max(len(result.records), result.total_size)
    governor.charge("query_rows", span.rows)
    payload = encode({"records": result.records, "total_size": result.total_size})
    governor.charge("query_bytes", len(payload))
    return payload


def _rows_of(payload: Any) -> tuple[list[Mapping[str, Any]], str]:
    external_id = "Id"
    rows = payload
    if isinstance(payload, dict):
        unknown = set(payload) - {"rows", "external_id"}
        if unknown:
            raise DmlError(f"unknown DML option(s): {', '.join(sorted(unknown))}")
        rows = payload.get("rows")
        external_id = payload.get("external_id", "Id")
        if not isinstance(external_id, str) or not IDENTIFIER.fullmatch(external_id):
            raise DmlError("external_id must be a field name")
    if not isinstance(rows, list):
        raise DmlError("rows must be an array of records")
    for index, row in enumerate(rows):
        if not isinstance(row, dict):
            raise DmlError(f"row {index}: must be a map of field name to value")
        for name, value in row.items():
            if not _is_value(value):
                raise DmlError(f"row {index}: field {name}: value must be nil, bool, int64, float or str")
    return rows, external_id


def dml(context: ExecutionContext, op: str, object_name: str, rows_payload: bytes) -> bytes:
    """One DML statement; on an object with triggers, ``context.records`` fires them (``triggers/``)."""
    governor = context.governor
    payload = decode(rows_payload, "records.dml rows")
    governor.charge("dml_statements")  # a statement that fails validation still counts, as in Apex
    rows, external_id = _rows_of(payload)
    governor.charge("dml_rows", len(rows))
    operation = DmlOp[op.upper()]
    attributes = {"circuit.dml.operation": operation.name, "circuit.dml.object": object_name}
    time_left = governor.time_left_ms()  # as for queries: the deadline cannot interrupt a host call
    if time_left <= 0:
        raise ExecutionTimeout("execution deadline passed before the DML")
    with context.log.timed("DML", f"{operation.name} {object_name}", attributes) as span:
        span.rows = len(rows)
        try:
            result = context.records.dml(operation, object_name, rows, external_id=external_id, timeout_ms=time_left)
        except QueryTimeout:
            raise ExecutionTimeout(
                f"wall-clock deadline of {governor.limit('timeout_ms')} ms reached during DML"
            ) from None
    return encode({"ids": result.ids, "created": result.created})
