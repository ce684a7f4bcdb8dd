"""An execution's records when its environment's system of record is a CRM.

Queries read the CRM and DML is queued in the outbox (``connectors/crm``). A change that comes
from that CRM's own webhook is already saved there: the host's statement for it seeds the
records (so triggers see them, ``fetch`` included) instead of writing them back, and only what
*before* triggers changed on them is queued as an update. Writing the change back would send
the CRM its own values again (and, for an insert, create a copy).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from pydantic import BaseModel

from ..connectors.crm.base import READ_ONLY_FIELDS, OutboxTransaction
from ..connectors.crm.crm_registry import CrmConnector, find
from ..connectors.crm.system_of_record import selected_plugin
from ..connectors.records import DelegatingTransaction, DmlOp, DmlResult, RecordsTransaction
from ..errors import Rejected
from ..webhooks import Change

_ABSENT = object()


@dataclass(frozen=True)
class CrmChange:
    """A webhook change as DML on the CRM; ``saved``: the CRM already holds it."""

    op: DmlOp
    object_name: str
    rows: list[dict[str, Any]]
    saved: bool


def crm_change(selection: BaseModel, change: Change) -> CrmChange:
    """How ``change`` applies when ``selection`` (a CRM) holds the environment's records.

    The CRM's own changes carry its ids (moved to ``Id``) and are already saved; changes from a
    source keyed by our ids (generic) are written to the CRM; another CRM's changes cannot apply.
    """
    crm = selected_plugin(selection)
    source = find(change.source)
    op = DmlOp[change.action.upper()]
    if source is None or source.external_id is None:
        return CrmChange(op, change.object, [dict(r) for r in change.records], saved=False)
    if crm is None or source is not crm:
        what = crm.title if crm is not None else "CircuitDB"
        raise Rejected(
            f"this environment's records live in {what}: {source.title} changes cannot be applied to them "
            "(select that CRM as the environment's system_of_record, or send its changes to another environment)"
        )
    carried = source.external_id.carried_as
    rows = []
    for record in change.records:
        # The CRM's system fields (CreatedDate...) are its own: triggers read them back with ``fetch``.
        row = {k: v for k, v in record.items() if k not in (carried, "Id") and k.lower() not in READ_ONLY_FIELDS}
        row["Id"] = record.get(carried)
        rows.append(row)
    return CrmChange(op, change.object, [r for r in rows if isinstance(r["Id"], str) and r["Id"]], saved=True)


class ExecutionCrmRecords:
    """One execution's ``RecordsConnector`` over a CRM connector, remembering the outbox entries it queued.

    ``saved`` names the records the host's first statement on ``object_name`` already finds in the CRM.
    """

    def __init__(self, connector: CrmConnector, saved: CrmChange | None = None) -> None:
        self.connector = connector
        self.saved = saved
        self._transactions: list[RecordsTransaction] = []

    def begin(self) -> RecordsTransaction:
        inner = self.connector.begin()
        transaction: RecordsTransaction = inner
        if self.saved is not None:
            transaction = SavedChangeTransaction(inner, self.saved)
        self._transactions.append(inner)
        return transaction

    def entry_ids(self) -> list[int]:
        """The outbox entries its transactions queued (committed ones, if the execution committed)."""
        return [i for t in self._transactions if isinstance(t, OutboxTransaction) for i in t.writer.entry_ids]

    def close(self) -> None:
        self.connector.close()


class SavedChangeTransaction(DelegatingTransaction):
    """A CRM transaction whose statement for a change the CRM already saved is not sent back."""

    def __init__(self, inner: RecordsTransaction, saved: CrmChange) -> None:
        super().__init__(inner)
        self.object_name = saved.object_name.lower()
        self._pending = {str(row["Id"]): row for row in saved.rows}

    def dml(
        self,
        op: DmlOp,
        object_name: str,
        rows: Sequence[Mapping[str, Any]],
        external_id: str = "Id",
        timeout_ms: int | None = None,
    ) -> DmlResult:
        ids = [row.get("Id") for row in rows]
        ours = (
            rows
            and object_name.lower() == self.object_name
            and external_id == "Id"
            and all(isinstance(i, str) and i in self._pending for i in ids)
        )
        if not ours:
            return self.inner.dml(op, object_name, rows, external_id, timeout_ms)
        saved = [self._pending.pop(str(i)) for i in ids]
        if op in (DmlOp.INSERT, DmlOp.UPDATE, DmlOp.UNDELETE):
            self.inner.seed(object_name, saved)
            changed = [
                {"Id": row["Id"], **{k: v for k, v in row.items() if k != "Id" and was.get(k, _ABSENT) != v}}
                for row, was in zip(rows, saved, strict=True)
            ]
            changed = [c for c in changed if len(c) > 1]
            if changed:  # what before triggers changed: the only part the CRM does not have yet
                self.inner.dml(DmlOp.UPDATE, object_name, changed, timeout_ms=timeout_ms)
        return DmlResult([str(i) for i in ids], [op is DmlOp.INSERT] * len(ids))
