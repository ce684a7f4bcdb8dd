"""Firing triggers on DML, with Apex semantics.

A circuit's DML statement on an object with registered triggers runs, per chunk of up to
200 records: the ``before_*`` triggers (which may change ``new``; their changes are what
gets saved), the write itself, then the ``after_*`` triggers (which see the saved rows,
with ids, and may issue DML of their own, firing further triggers). Every trigger runs in
a fresh store but shares the execution's governor, log and transaction. Nesting deeper
than ``MAX_TRIGGER_DEPTH`` fails the execution.

A trigger that returns ``err`` fails the statement that fired it: its writes are rolled
back to the statement's savepoint and the caller receives a catchable ``DmlError`` (as
Apex's ``addError`` surfaces as a ``DmlException``). A trigger that traps, times out or
hits a limit ends the whole execution.

Two ports keep this module below the runtime: ``Invoker`` is what runs a trigger's guest (the
runtime, or the native test runtime), and ``FiringRecords`` wraps an execution's records
transaction so that every DML statement, from a guest or from the host, goes through here.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any, Protocol

from ..abi.codec import encode
from ..connectors.records import DelegatingTransaction, DmlOp, DmlResult, RecordsTransaction
from ..errors import DmlError, ExecutionTimeout, GuestFault, LimitExceeded, Rejected
from ..execution.callout_policy import CalloutSession
from ..execution.context import ExecutionContext, current_context
from ..execution.events import Record, before_trigger_changes
from ..execution.execution_observer import AttributeValue
from ..sandbox.invocation import Invocation
from ..soql.parser import IDENTIFIER
from .registry import TriggerBinding, TriggerRegistry

MAX_TRIGGER_DEPTH = 16
TRIGGER_CHUNK_SIZE = 200
SYSTEM_FIELDS = frozenset({"Id", "IsDeleted", "CreatedDate", "LastModifiedDate"})


class Invoker(Protocol):
    """What runs one guest call for a trigger: ``Runtime`` (or the native test runtime)."""

    def invoke(self, module: Any, event: bytes, context: ExecutionContext) -> Invocation: ...


class TriggerFiring:
    """Runs DML statements through the triggers registered for one tenant."""

    def __init__(self, invoker: Invoker, registry: TriggerRegistry, tenant: str) -> None:
        self.invoker = invoker
        self.registry = registry
        self.tenant = tenant

    def wrap(self, transaction: RecordsTransaction) -> FiringRecords:
        """``transaction`` as an execution's records: its DML fires this tenant's triggers."""
        return FiringRecords(transaction, self)

    def dml(
        self,
        context: ExecutionContext,
        op: DmlOp,
        object_name: str,
        rows: Sequence[Mapping[str, Any]],
        external_id: str = "Id",
    ) -> DmlResult:
        """One all-or-none statement, with its triggers inside the statement's savepoint."""
        records = _raw(context.records)
        if not self.registry.handles(self.tenant, object_name):
            return records.dml(op, object_name, rows, external_id, _time_left(context))
        with records.savepoint():
            if op is DmlOp.UPSERT:
                return self._upsert(context, object_name, rows, external_id)
            ids: list[str] = []
            created: list[bool] = []
            for start in range(0, len(rows), TRIGGER_CHUNK_SIZE):
                result = self._chunk(
                    context, op, object_name, [dict(r) for r in rows[start : start + TRIGGER_CHUNK_SIZE]]
                )
                ids += result.ids
                created += result.created
            return DmlResult(ids, created)

    def _upsert(
        self, context: ExecutionContext, object_name: str, rows: Sequence[Mapping[str, Any]], external_id: str
    ) -> DmlResult:
        """Split an upsert into its update and insert parts, so each fires its own triggers."""
        for name in (object_name, external_id):
            if not IDENTIFIER.fullmatch(name):  # both become SOQL text below
                raise DmlError(f"invalid name {name!r}")
        if external_id != "Id":
            # The store's own rule for the key (an external id field): an empty statement writes nothing.
            _raw(context.records).dml(DmlOp.UPSERT, object_name, [], external_id)
        keys = [row.get(external_id) for row in rows]
        existing: dict[Any, str] = {}
        wanted = [k for k in keys if k is not None]
        if external_id == "Id":
            existing = {r["Id"]: r["Id"] for r in context.records.fetch(object_name, wanted) if not r.get("IsDeleted")}
        elif wanted:
            found = context.records.query(
                f"SELECT Id, {external_id} FROM {object_name} WHERE {external_id} IN :keys",
                {"keys": wanted},
                max_rows=len(wanted) * 2,
            ).records
            existing = {r[external_id]: r["Id"] for r in found}
        updates = [
            (i, {**row, "Id": existing[k]}) for i, (row, k) in enumerate(zip(rows, keys, strict=True)) if k in existing
        ]
        inserts = [(i, dict(row)) for i, (row, k) in enumerate(zip(rows, keys, strict=True)) if k not in existing]
        ids: list[str] = [""] * len(rows)
        created = [False] * len(rows)
        for op, part in ((DmlOp.UPDATE, updates), (DmlOp.INSERT, inserts)):
            if not part:
                continue
            result = self.dml(context, op, object_name, [row for _, row in part])
            for (index, _), record_id in zip(part, result.ids, strict=True):
                ids[index] = record_id
                created[index] = op is DmlOp.INSERT
        return DmlResult(ids, created)

    def _chunk(self, context: ExecutionContext, op: DmlOp, object_name: str, rows: list[Record]) -> DmlResult:
        records = _raw(context.records)
        if op is DmlOp.INSERT:
            new = self._before(context, object_name, "before_insert", rows, None)
            result = records.dml(op, object_name, new, timeout_ms=_time_left(context))
            self._after(context, object_name, "after_insert", records.fetch(object_name, result.ids), None)
            return result
        ids = [str(row.get("Id", "")) for row in rows]
        if op is DmlOp.UPDATE:
            old = records.fetch(object_name, ids)
            if len(old) != len(ids):
                # the store names the missing row
                return records.dml(op, object_name, rows, timeout_ms=_time_left(context))
            new = self._before(
                context, object_name, "before_update", [{**o, **r} for o, r in zip(old, rows, strict=True)], old
            )
            changes = [
                {"Id": n["Id"], **{f: v for f, v in n.items() if f not in SYSTEM_FIELDS and (f in r or v != o.get(f))}}
                for n, o, r in zip(new, old, rows, strict=True)
            ]
            result = records.dml(op, object_name, changes, timeout_ms=_time_left(context))
            self._after(context, object_name, "after_update", records.fetch(object_name, result.ids), old)
            return result
        if op is DmlOp.DELETE:
            old = [r for r in records.fetch(object_name, ids) if not r.get("IsDeleted")]
            if old:
                self._before(context, object_name, "before_delete", [], old)
            result = records.dml(op, object_name, rows, timeout_ms=_time_left(context))
            if old:
                self._after(context, object_name, "after_delete", [], old)
            return result
        result = records.dml(op, object_name, rows, timeout_ms=_time_left(context))  # undelete
        self._after(context, object_name, "after_undelete", records.fetch(object_name, result.ids), None)
        return result

    def _before(
        self, context: ExecutionContext, object_name: str, operation: str, new: list[Record], old: list[Record] | None
    ) -> list[Record]:
        for binding in self.registry.bindings(self.tenant, object_name, operation):
            output = self._run(context, binding, new, old)
            if operation != "before_delete":
                try:
                    new = before_trigger_changes(new, output)
                except Rejected as exc:
                    raise DmlError(f"trigger {binding.name} on {object_name}.{operation}: {exc}") from None
        return new

    def _after(
        self, context: ExecutionContext, object_name: str, operation: str, new: list[Record], old: list[Record] | None
    ) -> None:
        for binding in self.registry.bindings(self.tenant, object_name, operation):
            self._run(context, binding, new, old)

    def _run(
        self, context: ExecutionContext, binding: TriggerBinding, new: list[Record], old: list[Record] | None
    ) -> Any:
        """Run one trigger one level deeper; map its failure onto the statement or the execution."""
        where = f"trigger {binding.name} on {binding.object_name}.{binding.operation}"
        if context.depth + 1 > MAX_TRIGGER_DEPTH:
            raise LimitExceeded("trigger_depth", context.depth, 1, MAX_TRIGGER_DEPTH)
        event = {
            "kind": "trigger",
            "object": binding.object_name,
            "operation": binding.operation,
            "new": new,
            "old": old,
        }
        count = len(new) or len(old or [])
        attributes: dict[str, AttributeValue] = {
            "circuit.trigger": binding.name,
            "circuit.object": binding.object_name,
            "circuit.operation": binding.operation,
            "circuit.depth": context.depth + 1,
            "circuit.records": count,
        }
        with context.log.code_unit(where, f"depth {context.depth + 1}, {count} records", attributes) as unit:
            context.settle_fuel()
            child = context.child()
            if binding.allowed_hosts is not None:  # each deployed circuit calls out only where its bundle says
                child.http = CalloutSession(
                    context.http.connector,
                    binding.allowed_hosts,
                    context.http.max_response_bytes,
                    binding.credentials if binding.credentials is not None else context.http.credentials,
                    context.http.allowed_networks,  # the operator's, for the tenant: never from a bundle
                )
            try:
                outcome = self.invoker.invoke(binding.module, encode(event), child)
            finally:
                context.cap_fuel()
            unit.status = outcome.status
        if outcome.status == "ok":
            return outcome.output
        message = f"{where}: {outcome.error_message}"
        if outcome.status == "error":
            raise DmlError(message)
        if outcome.status == "limit_exceeded":
            governor = context.governor
            resource = outcome.resource or "fuel"
            if resource == "trigger_depth":
                raise LimitExceeded(resource, MAX_TRIGGER_DEPTH, 1, MAX_TRIGGER_DEPTH)
            raise LimitExceeded(resource, governor.used(resource), 0, governor.limit(resource))
        if outcome.status == "timeout":
            raise ExecutionTimeout(message)
        raise GuestFault(message)


class FiringRecords(DelegatingTransaction):
    """An execution's records transaction whose DML goes through the triggers.

    Guests' DML (the ``records`` capability) and the host's (webhooks, the records API) call
    ``dml`` like on any transaction; the statement is run for the execution that is running
    (``current_context()``), so a trigger's own DML is one level deeper. Everything else is the
    transaction's own (``inner``).
    """

    def __init__(self, transaction: RecordsTransaction, firing: TriggerFiring) -> None:
        super().__init__(transaction)
        self.firing = firing

    def dml(
        self,
        op: DmlOp,
        object_name: str,
        rows: Sequence[Mapping[str, Any]],
        external_id: str = "Id",
        timeout_ms: int | None = None,
    ) -> DmlResult:
        """``timeout_ms`` is not passed on: the firing bounds each statement it runs by the running
        execution's deadline at that moment (trigger runs take time between them)."""
        return self.firing.dml(current_context(), op, object_name, rows, external_id)


def _time_left(context: ExecutionContext) -> int:
    """How long the next statement may run: what is left of the execution's deadline (at least 0,
    which the store refuses as no time left)."""
    return context.governor.time_left_ms()


def _raw(records: RecordsTransaction) -> RecordsTransaction:
    """The transaction under a firing wrapper: where the firing itself writes."""
    return records.inner if isinstance(records, FiringRecords) else records
