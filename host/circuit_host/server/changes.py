"""From a normalised webhook ``Change`` to the DML that applies it to an environment's records.

Records that come from a CRM carry the CRM's ids, not ours, so each source keys its records
on the external-id field its plugin names (``CrmPlugin.external_id``: ``GHL_Id__c``,
``Salesforce_Id__c``), which the server adds to the object on first use: creates and updates
become upserts on that key (firing insert or update triggers as appropriate), deletes and
undeletes look our ids up by it. A source without one (generic) carries our own ids.
"""

from __future__ import annotations

from typing import Any

from ..circuitdb import CircuitDB, FieldDef, FieldType
from ..connectors.crm import crm_registry
from ..connectors.records import DmlOp
from ..webhooks.model import Change


def ensure_key_field(store: CircuitDB, object_name: str, key: str) -> None:
    definition = store.schema.object(object_name)
    if definition is not None and definition.field(key) is not None:
        return
    store.add_field(object_name, FieldDef(key, FieldType.TEXT, external_id=True, length=80, label=f"{key} (CRM id)"))


def as_dml(store: CircuitDB, change: Change) -> tuple[DmlOp, list[dict[str, Any]], str]:
    """The operation, rows and external-id field that apply ``change``."""
    plugin = crm_registry.find(change.source)
    external = plugin.external_id if plugin is not None else None
    if external is None:
        return DmlOp[change.action.upper()], [dict(r) for r in change.records], "Id"
    key = external.field
    ensure_key_field(store, change.object, key)
    definition = store.schema.object(change.object)
    rows = []
    for record in change.records:
        row = dict(record)
        if external.carried_as != key and external.carried_as in row:
            row[key] = row.pop(external.carried_as)
        # A CRM sends fields this tenant's schema may not declare: keep what the schema knows.
        known = {f.name for f in definition.fields if not f.system} if definition is not None else set(row)
        rows.append({name: value for name, value in row.items() if name in known})
    if change.action in ("insert", "update"):
        if definition is not None:
            _resolve_references(store, key, rows, {f.name: f.reference_to for f in definition.fields if f.reference_to})
        return DmlOp.UPSERT, rows, key
    keys = [row[key] for row in rows if row.get(key)]
    deleted = "true" if change.action == "undelete" else "false"
    transaction = store.begin()
    try:
        found = transaction.query(
            f"SELECT Id FROM {change.object} WHERE {key} IN :keys AND IsDeleted = {deleted}",
            {"keys": keys},
            max_rows=len(keys) + 1,
        ).records
    finally:
        transaction.close()
    return DmlOp[change.action.upper()], [{"Id": r["Id"]} for r in found], "Id"


def _resolve_references(
    store: CircuitDB, key: str, rows: list[dict[str, Any]], references: dict[str, tuple[str, ...]]
) -> None:
    """Replace CRM ids in reference fields (OwnerId, WhoId, AccountId) by ours, looked up through the
    source's key field on the referenced objects; drop the ones this store does not know."""
    for field_name, targets in references.items():
        wanted = [row[field_name] for row in rows if row.get(field_name)]
        ours: dict[str, str] = {}
        for target in targets if wanted else ():
            definition = store.schema.object(target)
            if definition is None or definition.field(key) is None:
                continue
            transaction = store.begin()
            try:
                found = transaction.query(
                    f"SELECT Id, {key} FROM {definition.name} WHERE {key} IN :keys", {"keys": wanted}, len(wanted) + 1
                ).records
            finally:
                transaction.close()
            ours.update({r[key]: r["Id"] for r in found if r[key] not in ours})
        for row in rows:
            if field_name in row:
                resolved = ours.get(row[field_name])
                if resolved is None:
                    del row[field_name]
                else:
                    row[field_name] = resolved
