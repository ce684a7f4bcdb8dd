"""Running a trigger event the way the triggering DML would have fired it.

``circuit run`` (and later the webhook server) hands the host an event describing a
record change. Apex order applies: *before* triggers run first and may change ``new``,
and the change is then saved; *after* triggers see records already saved, with ids.
All of it happens inside the execution's transaction, so a failing trigger also undoes
the change that fired it.
"""

from __future__ import annotations

from typing import Any

from ..connectors.records import DmlOp, RecordsTransaction
from ..sandbox.runtime import Loaded
from .events import Record, TriggerEvent, before_trigger_changes, parse_event
from .executions import ExecutionOptions, ExecutionRecord, Executor


def _save(transaction: RecordsTransaction, event: TriggerEvent, new: list[Record]) -> list[Record]:
    """Apply the triggering change; returns ``new`` with ids as saved."""
    if event.action == "insert":
        ids = transaction.seed(event.object, new)
        return [{**record, "Id": record_id} for record, record_id in zip(new, ids, strict=True)]
    if event.action == "update":
        transaction.seed(event.object, new)
        return new
    rows = [{"Id": r["Id"]} for r in (event.old or event.new) if "Id" in r]
    if event.action == "delete":
        transaction.seed(event.object, event.old or [])
        transaction.dml(DmlOp.DELETE, event.object, rows)
    else:  # undelete
        transaction.seed(event.object, event.new)
    return new


def run_trigger_event(
    executor: Executor, module: Loaded, data: Any, options: ExecutionOptions | None = None
) -> ExecutionRecord:
    """Validate ``data`` as a trigger event and run it with the save around the handler."""
    event = parse_event(data)

    if event.timing == "before":

        def after_handle(transaction: RecordsTransaction, output: Any) -> None:
            _save(transaction, event, before_trigger_changes(event.new, output))

        return executor.run(module, event.to_wire(), options, after_handle=after_handle)

    def before_handle(transaction: RecordsTransaction) -> Any:
        saved = _save(transaction, event, event.new)
        return {**event.to_wire(), "new": saved}

    return executor.run(module, None, options, before_handle=before_handle)
