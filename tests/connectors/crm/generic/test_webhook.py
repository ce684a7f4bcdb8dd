"""The generic (Circuit Script) webhook format."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import pytest

from circuit_host.connectors.crm.generic import GENERIC, generic_json_schema
from circuit_host.webhooks import DEFAULT_LIMITS, BodyLimits, Change, WebhookRejected
from tests.webhooks import helpers
from tests.webhooks.helpers import body, data, dumps


def normalize(raw: bytes, content_type: str | None, *, limits: BodyLimits = DEFAULT_LIMITS) -> list[Change]:
    return helpers.normalize(GENERIC.source, raw, content_type, limits=limits)


def test_insert() -> None:
    [change] = normalize(body("generic_contact_insert"), "application/json")
    assert (change.webhook_id, change.object, change.action) == ("evt_01J8Z3K7Q2W5X9Y4M6N8P0R2T4", "Contact", "insert")
    assert change.occurred_at == datetime(2026, 8, 3, 14, 35, 12, tzinfo=UTC)
    assert len(change.records) == 2 and change.records[1]["Website_Visits__c"] == 4.0
    assert change.changed_fields is None and change.source == "generic"


def test_update_with_an_offset_and_changed_fields() -> None:
    [change] = normalize(body("generic_contact_update"), "application/vnd.circuit+json")
    assert change.occurred_at == datetime(2026, 8, 3, 15, 2, 47, 118000, tzinfo=UTC)
    assert change.changed_fields == ["Website_Visits__c"]
    assert change.records == [{"Id": "003Qy00000VLp01IAB", "Website_Visits__c": 17}]


@pytest.mark.parametrize(
    "patch, message",
    [
        ({"id": ""}, "id: String should have at least 1 character"),
        ({"object": "Contact__r.x"}, "object: String should match pattern"),
        ({"operation": "merge"}, "operation: Input should be 'insert', 'update', 'delete' or 'undelete'"),
        ({"records": []}, "records: List should have at least 1 item"),
        ({"records": [{}]}, "records.0: a record needs at least one field"),
        ({"records": [{"Nested": {"a": 1}}]}, "records.0.Nested"),
        ({"records": [{"bad-name": 1}]}, "records.0.bad-name.[key]: String should match pattern"),
        ({"occurred_at": "2026-08-03T14:35:12"}, "has no UTC offset"),
        ({"occurred_at": 1785767712}, "occurred_at: Input should be a valid string"),
        ({"extra": 1}, "extra: Extra inputs are not permitted"),
        ({"changed_fields": "Email"}, "changed_fields: Input should be a valid list"),
    ],
)
def test_invalid_generic_webhooks_are_400(patch: dict[str, Any], message: str) -> None:
    with pytest.raises(WebhookRejected) as caught:
        normalize(dumps({**data("generic_contact_insert"), **patch}), None)
    assert caught.value.status == 400
    assert message in caught.value.message


def test_missing_fields_are_named() -> None:
    with pytest.raises(WebhookRejected) as caught:
        normalize(b'{"object": "Contact"}', None)
    for name in ("id: Field required", "operation: Field required", "records: Field required"):
        assert name in caught.value.message


def test_record_cap() -> None:
    payload = {**data("generic_contact_insert"), "records": [{"LastName": f"L{i}"} for i in range(201)]}
    with pytest.raises(WebhookRejected, match="201 records, over the limit of 200"):
        normalize(dumps(payload), None)
    payload["records"] = payload["records"][:3]
    with pytest.raises(WebhookRejected, match="3 records, over the limit of 2"):
        normalize(dumps(payload), None, limits=BodyLimits(max_records=2))


def test_schema_is_published() -> None:
    schema = generic_json_schema()
    assert set(schema["required"]) == {"id", "object", "operation", "records", "occurred_at"}
    assert schema["additionalProperties"] is False
