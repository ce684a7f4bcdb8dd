"""GoHighLevel webhooks (``ContactCreate``, ``TaskComplete``...) to ``Change``s.

Field names come from the GoHighLevel connector's mapping (``fields.record_from_ghl``), so a webhook
record and a record the connector reads have the same shape.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from ....webhooks.errors import malformed, unsupported
from ....webhooks.model import Action, Change, expect_object, expect_string, parse_timestamp
from .fields import CONTACT_FIELDS, TASK_FIELDS, custom_field_circuit_name, record_from_ghl

SOURCE = "ghl"
"""The webhook source name: ``/v1/hooks/ghl``, and ``Change.source``."""

GHL_ID_FIELD = "GHL_Id__c"
"""Where a GoHighLevel record's own id goes: the record has no Circuit ``Id`` until the server keys it."""

EVENT_TYPES: dict[str, tuple[str, Action]] = {
    "ContactCreate": ("Contact", "insert"),
    "ContactUpdate": ("Contact", "update"),
    "ContactDelete": ("Contact", "delete"),
    "ContactDndUpdate": ("Contact", "update"),
    "ContactTagUpdate": ("Contact", "update"),
    "TaskCreate": ("Task", "insert"),
    "TaskComplete": ("Task", "update"),
    "TaskDelete": ("Task", "delete"),
}
"""Supported GoHighLevel event types: the object and action each one is."""

REFERENCES: dict[str, dict[str, str]] = {
    "Contact": {"OwnerId": "User"},
    "Task": {"WhoId": "Contact", "OwnerId": "User"},
}
"""Reference fields whose value in a GHL payload is a *GoHighLevel* id of the named object."""

_ENVELOPE = frozenset({"type", "locationId", "id", "webhookId", "timestamp", "customFields", "tags"})
_MAPPED = {"Contact": frozenset(CONTACT_FIELDS.values()), "Task": frozenset(TASK_FIELDS.values())}


@dataclass(frozen=True)
class GhlMapping:
    """How a tenant's GHL custom fields and tags become record fields.

    ``custom_fields`` maps a GHL custom-field id (as webhooks send it) to its key
    (``contact.company_size`` → ``company_size__c``) or directly to a circuit field name
    ending in ``__c`` (kept as written). ``tags_field``, when set, receives the tags joined
    with ``;`` (a multi-select picklist value); otherwise tags stay in ``meta``.
    """

    custom_fields: Mapping[str, str] = field(default_factory=dict)
    tags_field: str | None = None

    def field_name(self, custom_field_id: str, key: str | None) -> str | None:
        target = self.custom_fields.get(custom_field_id) or key
        if not target:
            return None
        return target if target.lower().endswith("__c") else custom_field_circuit_name(target)


def normalize_ghl(data: Any, mapping: GhlMapping | None = None) -> list[Change]:
    """One GHL event (a flat JSON object) as one ``Change`` of one record."""
    mapping = mapping or GhlMapping()
    payload = expect_object(data, "GoHighLevel webhook")
    event_type = expect_string(payload, "type", "GoHighLevel webhook")
    if event_type not in EVENT_TYPES:
        raise unsupported(
            f"GoHighLevel event type {event_type[:80]!r} is not supported "
            f"(supported: {', '.join(EVENT_TYPES)}; only Contact and Task events)"
        )
    where = f"GoHighLevel {event_type}"
    object_name, action = EVENT_TYPES[event_type]
    location_id = expect_string(payload, "locationId", where)
    ghl_id = expect_string(payload, "id", where)
    webhook_id = payload.get("webhookId")
    if webhook_id is not None and (not isinstance(webhook_id, str) or not webhook_id):
        raise malformed(f"{where}: field 'webhookId' must be a non-empty string")
    timestamp = payload.get("timestamp")
    occurred_at = None if timestamp is None else parse_timestamp(timestamp, f"{where}: timestamp", naive_is_utc=True)

    record = record_from_ghl(object_name, payload)
    record.pop("Id", None)
    record[GHL_ID_FIELD] = ghl_id
    meta: dict[str, Any] = {"ghl_type": event_type, "location_id": location_id}
    changed: list[str] | None = None

    references = {name: target for name, target in REFERENCES[object_name].items() if record.get(name) is not None}
    if references:
        meta["references"] = references
    if event_type == "TaskComplete":
        record["Status"] = "Completed"
        changed = ["Status"]
    if event_type == "ContactDndUpdate":
        changed = ["DoNotCall"] if "DoNotCall" in record else []

    if "tags" in payload:
        tags = payload["tags"]
        if not isinstance(tags, list) or not all(isinstance(t, str) for t in tags):
            raise malformed(f"{where}: field 'tags' must be an array of strings")
        if mapping.tags_field:
            record[mapping.tags_field] = ";".join(tags)
        else:
            meta["tags"] = tags
        if event_type == "ContactTagUpdate":
            changed = [mapping.tags_field] if mapping.tags_field else []

    unmapped_custom = _custom_fields(payload.get("customFields"), mapping, record, where)
    if unmapped_custom:
        meta["custom_fields"] = unmapped_custom
    extra = {k: v for k, v in payload.items() if k not in _ENVELOPE and k not in _MAPPED[object_name]}
    if extra:
        meta["unmapped"] = extra
    return [
        Change(
            webhook_id=webhook_id,
            occurred_at=occurred_at,
            object=object_name,
            action=action,
            records=[record],
            changed_fields=changed,
            source=SOURCE,
            meta=meta,
        )
    ]


def _custom_fields(raw: Any, mapping: GhlMapping, record: dict[str, Any], where: str) -> list[dict[str, Any]]:
    """Put mapped custom fields into ``record``; answer the ones no key is known for."""
    if raw is None:
        return []
    if not isinstance(raw, list):
        raise malformed(f"{where}: field 'customFields' must be an array of {{id, value}} objects")
    unmapped: list[dict[str, Any]] = []
    for index, item in enumerate(raw):
        if not isinstance(item, dict) or not isinstance(item.get("id"), str) or not item["id"]:
            raise malformed(f"{where}: customFields[{index}] must be an object with a string 'id'")
        key = item.get("fieldKey") or item.get("key")
        name = mapping.field_name(item["id"], key if isinstance(key, str) else None)
        value = item.get("value", item.get("field_value"))
        if name is None:
            unmapped.append({"id": item["id"], "value": value})
        else:
            record[name] = _scalar(value)
    return unmapped


def _scalar(value: Any) -> Any:
    """A custom-field value as a record value: lists (multi-select) joined with ``;``, objects dropped."""
    if isinstance(value, list):
        return ";".join(str(v) for v in value)
    if isinstance(value, dict):
        return None
    return value
