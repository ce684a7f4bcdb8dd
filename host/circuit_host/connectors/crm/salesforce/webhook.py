"""Salesforce Change Data Capture events to ``Change``s.

Accepted shapes: the bare event payload (``{"ChangeEventHeader": ..., fields...}``), the Pub/Sub
style ``{"payload": ...}`` and the CometD/streaming style ``{"data": {"payload": ..., "event": ...}}``.
One event is one ``Change`` with one record per ``recordIds`` entry.
"""

from __future__ import annotations

import re
from typing import Any

from ....webhooks.errors import WebhookRejected, malformed, unsupported
from ....webhooks.model import (
    DEFAULT_LIMITS,
    OBJECT_NAME,
    Action,
    BodyLimits,
    Change,
    expect_object,
    expect_string,
    parse_timestamp,
)

SOURCE = "salesforce-cdc"
"""The webhook source name: ``/v1/hooks/salesforce-cdc``, and ``Change.source``."""

SALESFORCE_ID_FIELD = "Salesforce_Id__c"
"""Where the server keeps a Salesforce record's id (events carry it as ``Id``)."""

CHANGE_TYPES: dict[str, Action] = {"CREATE": "insert", "UPDATE": "update", "DELETE": "delete", "UNDELETE": "undelete"}
FIELD_NAME = re.compile(r"^[A-Za-z][A-Za-z0-9_]{0,79}$")
RECORD_ID = re.compile(r"^[A-Za-z0-9]{15}(?:[A-Za-z0-9]{3})?$")  # 15- or 18-character Salesforce ids
MAX_FIELDS = 1000
"""Fields per event (Salesforce objects have at most 800 custom fields)."""


def normalize_salesforce_cdc(data: Any, limits: BodyLimits = DEFAULT_LIMITS) -> list[Change]:
    payload, envelope_event = _unwrap(data)
    where = "Salesforce change event"
    header = expect_object(payload.get("ChangeEventHeader"), f"{where}: ChangeEventHeader")
    entity = expect_string(header, "entityName", f"{where}: ChangeEventHeader")
    if not OBJECT_NAME.match(entity):
        raise malformed(f"{where}: entityName {entity[:80]!r} is not a valid object name")
    change_type = expect_string(header, "changeType", f"{where}: ChangeEventHeader")
    where = f"Salesforce {entity} {change_type[:40]} event"
    if change_type.startswith("GAP_") or "OVERFLOW" in change_type:
        raise unsupported(
            f"{where} carries no field values: Salesforce sends {change_type} when it could not capture the change "
            "itself (a change made outside the API, too large, or more changes than it could send); "
            "re-read the records from Salesforce (or resynchronise the object) instead of replaying this event"
        )
    if change_type not in CHANGE_TYPES:
        raise unsupported(
            f"{where}: changeType {change_type[:40]!r} is not supported (supported: {', '.join(CHANGE_TYPES)})"
        )
    action = CHANGE_TYPES[change_type]

    record_ids = header.get("recordIds")
    if not isinstance(record_ids, list) or not record_ids:
        raise malformed(f"{where}: ChangeEventHeader.recordIds must be a non-empty array of record ids")
    for index, record_id in enumerate(record_ids):
        if not isinstance(record_id, str) or not RECORD_ID.match(record_id):
            raise malformed(f"{where}: recordIds[{index}] is not a 15- or 18-character Salesforce id")
    if len(record_ids) != len(set(record_ids)):
        raise malformed(f"{where}: recordIds has duplicates")
    if len(record_ids) > limits.max_cdc_record_ids:
        raise WebhookRejected(
            413, "too_large", f"{where}: {len(record_ids)} recordIds, over the limit of {limits.max_cdc_record_ids}"
        )

    nulled = _names(header, "nulledFields", where)
    diff = _names(header, "diffFields", where)
    changed = _names(header, "changedFields", where)
    fields: dict[str, Any] = {}
    for name, value in payload.items():
        if name == "ChangeEventHeader":
            continue
        for flat, flat_value in _flatten(name, value, where):
            fields[flat] = flat_value
    if len(fields) > MAX_FIELDS:
        raise WebhookRejected(413, "too_large", f"{where}: {len(fields)} fields, over the limit of {MAX_FIELDS}")
    if action == "update":
        # Unchanged fields may come as null; only nulledFields says a null is a real change.
        fields = {k: v for k, v in fields.items() if v is not None}
    for name in nulled:
        fields[name] = None
    for name in diff:  # the value is a diff of a long text field, not the value
        fields.pop(name, None)
    fields.pop("Id", None)
    if action == "delete":
        fields = {}

    meta: dict[str, Any] = {}
    for key, meta_key in (
        ("changeOrigin", "change_origin"),
        ("commitUser", "commit_user"),
        ("commitNumber", "commit_number"),
        ("transactionKey", "transaction_key"),
        ("sequenceNumber", "sequence_number"),
    ):
        if header.get(key) is not None:
            meta[meta_key] = header[key]
    if diff:
        meta["diff_fields"] = diff
    if isinstance(envelope_event, dict) and envelope_event.get("replayId") is not None:
        meta["replay_id"] = envelope_event["replayId"]

    commit = header.get("commitTimestamp")
    occurred_at = None if commit is None else parse_timestamp(commit, f"{where}: commitTimestamp", naive_is_utc=True)
    transaction_key, sequence = header.get("transactionKey"), header.get("sequenceNumber")
    webhook_id = None
    if isinstance(transaction_key, str) and transaction_key and isinstance(sequence, int | str):
        webhook_id = f"{transaction_key}:{sequence}"
    return [
        Change(
            webhook_id=webhook_id,
            occurred_at=occurred_at,
            object=entity,
            action=action,
            records=[{"Id": record_id, **fields} for record_id in record_ids],
            changed_fields=changed if action == "update" else None,
            source=SOURCE,
            meta=meta,
        )
    ]


def _unwrap(data: Any) -> tuple[dict[str, Any], Any]:
    """The event payload, and the envelope's ``event`` (with ``replayId``) if any."""
    top = expect_object(data, "Salesforce change event")
    if "ChangeEventHeader" in top:
        return top, None
    inner = top.get("data")
    if isinstance(inner, dict) and isinstance(inner.get("payload"), dict):
        return inner["payload"], inner.get("event")
    if isinstance(top.get("payload"), dict):
        return top["payload"], top.get("event")
    raise malformed(
        "Salesforce change event: no ChangeEventHeader (expected the event payload, "
        '{"payload": {...}} or {"data": {"payload": {...}}})'
    )


def _names(header: dict[str, Any], key: str, where: str) -> list[str]:
    raw = header.get(key)
    if raw is None:
        return []
    if not isinstance(raw, list) or not all(isinstance(n, str) for n in raw):
        raise malformed(f"{where}: ChangeEventHeader.{key} must be an array of field names")
    names: list[str] = []
    for dotted in raw:
        head, _, sub = dotted.partition(".")
        name = _compound_part(head, sub, where) if sub else head
        if not FIELD_NAME.match(name):
            raise malformed(f"{where}: ChangeEventHeader.{key}: {dotted[:80]!r} is not a field name")
        if name not in names:
            names.append(name)
    return names


def _flatten(name: str, value: Any, where: str) -> list[tuple[str, Any]]:
    """A payload field as record fields: compound fields (Name, *Address, geolocation) split into their parts."""
    if not FIELD_NAME.match(name):
        raise malformed(f"{where}: {name[:80]!r} is not a field name")
    if isinstance(value, dict):
        parts: list[tuple[str, Any]] = []
        for sub, sub_value in value.items():
            if isinstance(sub_value, dict | list):
                raise malformed(f"{where}: field {name}.{sub[:80]} must be a scalar")
            flat = _compound_part(name, sub, where)
            if not FIELD_NAME.match(flat):
                raise malformed(f"{where}: {name}.{sub[:80]!r} is not a field name")
            parts.append((flat, sub_value))
        return parts
    if isinstance(value, list):
        raise malformed(f"{where}: field {name} must be a scalar or a compound field, not an array")
    return [(name, value)]


def _compound_part(name: str, sub: str, where: str) -> str:
    """``Name.FirstName`` -> ``FirstName``, ``MailingAddress.City`` -> ``MailingCity``,
    ``Loc__c.Latitude`` -> ``Loc__Latitude__s``."""
    if name == "Name":
        return sub
    if name.endswith("Address"):
        return name[: -len("Address")] + sub
    if name.endswith("__c"):
        return f"{name[:-3]}__{sub}__s"
    raise unsupported(f"{where}: compound field {name} is not supported (only Name, *Address and geolocation fields)")
