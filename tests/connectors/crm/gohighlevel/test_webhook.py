"""GoHighLevel webhooks to Changes, with the connector's field mapping."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from circuit_host.connectors.crm.gohighlevel import EVENT_TYPES, GHL_ID_FIELD, GhlMapping, normalize_ghl
from circuit_host.webhooks import Change, WebhookRejected, read_json_body
from tests.webhooks.helpers import body, data, dumps

VLPR = GhlMapping(
    custom_fields={
        "BcdmQEsNgz6AVpgLVUJ0": "Company_Size__c",
        "XyWvQEsNgz6AVpgLVUJ1": "Website_Visits__c",
        "Q1r2QEsNgz6AVpgLVUJ2": "contact.emails_opened",
        "Zz9yQEsNgz6AVpgLVUJ3": "Called_Business__c",
    }
)


def normalize(raw: bytes, content_type: str | None, *, ghl_mapping: GhlMapping | None = None) -> list[Change]:
    return normalize_ghl(read_json_body(raw, content_type), ghl_mapping)


def test_contact_create_maps_fields_the_way_the_connector_does() -> None:
    [change] = normalize(body("ghl_contact_create"), "application/json", ghl_mapping=VLPR)
    assert (change.object, change.action, change.source) == ("Contact", "insert", "ghl")
    assert change.operation("after") == "after_insert"
    assert change.webhook_id == "2f5a7c51-8d0e-4c1b-9a55-1b8a9f4e6c02"
    assert change.occurred_at == datetime(2026, 8, 3, 14, 35, 12, 402000, tzinfo=UTC)
    assert change.changed_fields is None
    assert change.records == [
        {
            "FirstName": "Priya",
            "LastName": "Raman",
            "Email": "priya.raman@northwindlogistics.com",
            "Phone": "+14155550142",
            "MailingStreet": "535 Mission St",
            "MailingCity": "San Francisco",
            "MailingState": "CA",
            "MailingPostalCode": "94105",
            "MailingCountry": "US",
            "LeadSource": "Referral",
            "Website": "https://northwindlogistics.com",
            "Birthdate": None,
            "CompanyName": "Northwind Logistics",
            "OwnerId": "Kp2hPDo3mQvGm6UkXq5X",
            "DoNotCall": False,
            "CreatedDate": "2026-08-03T14:35:11.978Z",
            GHL_ID_FIELD: "nmFmQEsNgz6AVpgLVUJ0",
            "Company_Size__c": 450,
            "Website_Visits__c": 14,
            "emails_opened__c": 3,
            "Called_Business__c": True,
        }
    ]
    assert "Id" not in change.records[0]  # no Circuit id yet: the server keys on GHL_Id__c
    assert change.meta["location_id"] == "ve9EPM428h8vShlRW1KT"
    assert change.meta["ghl_type"] == "ContactCreate"
    assert change.meta["tags"] == ["inbound", "enterprise"]
    assert change.meta["custom_fields"] == [{"id": "Unk0QEsNgz6AVpgLVUJ4", "value": ["Email", "SMS"]}]
    assert change.meta["references"] == {"OwnerId": "User"}
    assert change.meta["unmapped"] == {"name": "Priya Raman", "attachments": []}


def test_without_a_mapping_custom_fields_and_tags_stay_in_meta() -> None:
    [change] = normalize(body("ghl_contact_create"), None)
    assert not any(k.endswith("__c") and k != GHL_ID_FIELD for k in change.records[0])
    assert [c["id"] for c in change.meta["custom_fields"]] == [
        "BcdmQEsNgz6AVpgLVUJ0",
        "XyWvQEsNgz6AVpgLVUJ1",
        "Q1r2QEsNgz6AVpgLVUJ2",
        "Zz9yQEsNgz6AVpgLVUJ3",
        "Unk0QEsNgz6AVpgLVUJ4",
    ]


def test_tags_field_and_multi_select_values_join_with_semicolons() -> None:
    mapping = GhlMapping(custom_fields={"Unk0QEsNgz6AVpgLVUJ4": "Channels__c"}, tags_field="Tags__c")
    [change] = normalize(body("ghl_contact_create"), None, ghl_mapping=mapping)
    assert change.records[0]["Tags__c"] == "inbound;enterprise"
    assert change.records[0]["Channels__c"] == "Email;SMS"
    assert "tags" not in change.meta


def test_a_custom_field_carrying_its_key_needs_no_mapping() -> None:
    payload = data("ghl_contact_update")
    payload["customFields"] = [{"id": "XyWvQEsNgz6AVpgLVUJ1", "fieldKey": "contact.website_visits", "value": 17}]
    [change] = normalize(dumps(payload), None)
    assert change.records[0]["website_visits__c"] == 17


def test_contact_update_carries_only_what_was_sent() -> None:
    [change] = normalize(body("ghl_contact_update"), None, ghl_mapping=VLPR)
    assert change.action == "update"
    record = change.records[0]
    assert record["MailingPostalCode"] == "94107" and record["Website_Visits__c"] == 17
    assert record["LastModifiedDate"] == "2026-08-03T15:02:46.870Z"
    for absent in ("MailingCity", "CompanyName", "Company_Size__c", "Birthdate"):
        assert absent not in record  # unknown, not null: the server merges with the last-seen version


def test_contact_delete() -> None:
    [change] = normalize(body("ghl_contact_delete"), None)
    assert (change.object, change.action) == ("Contact", "delete")
    assert change.records[0][GHL_ID_FIELD] == "nmFmQEsNgz6AVpgLVUJ0"


def test_dnd_update_is_an_update_of_do_not_call() -> None:
    [change] = normalize(body("ghl_contact_dnd_update"), None)
    assert (change.action, change.changed_fields) == ("update", ["DoNotCall"])
    assert change.records == [{"DoNotCall": True, GHL_ID_FIELD: "nmFmQEsNgz6AVpgLVUJ0"}]
    assert change.meta["unmapped"]["dndSettings"]["Call"]["code"] == "103"


def test_tag_update_is_an_update() -> None:
    [change] = normalize(body("ghl_contact_tag_update"), None)
    assert (change.action, change.changed_fields) == ("update", [])
    assert change.meta["tags"] == ["inbound", "enterprise", "hot-lead"]
    [mapped] = normalize(body("ghl_contact_tag_update"), None, ghl_mapping=GhlMapping(tags_field="Tags__c"))
    assert mapped.changed_fields == ["Tags__c"]
    assert mapped.records[0]["Tags__c"] == "inbound;enterprise;hot-lead"


def test_task_create_maps_task_fields_and_marks_the_contact_reference() -> None:
    [change] = normalize(body("ghl_task_create"), None)
    assert (change.object, change.action) == ("Task", "insert")
    assert change.records == [
        {
            "Subject": "Call Priya Raman",
            "Description": "Grade A lead from Virtual LPR: call within one business day.",
            "ActivityDate": "2026-08-04",
            "OwnerId": "Kp2hPDo3mQvGm6UkXq5X",
            "WhoId": "nmFmQEsNgz6AVpgLVUJ0",
            GHL_ID_FIELD: "t7GhQm2LpX9wVb3NcR5d",
        }
    ]
    # WhoId holds the contact's GoHighLevel id: the server resolves it through GHL_Id__c.
    assert change.meta["references"] == {"WhoId": "Contact", "OwnerId": "User"}
    assert change.meta["unmapped"] == {"dateAdded": "2026-08-03T14:36:02.512Z"}


def test_task_complete_is_an_update_of_status() -> None:
    [change] = normalize(body("ghl_task_complete"), None)
    assert (change.object, change.action, change.changed_fields) == ("Task", "update", ["Status"])
    assert change.records[0]["Status"] == "Completed"


def test_task_delete() -> None:
    [change] = normalize(body("ghl_task_delete"), None)
    assert (change.object, change.action) == ("Task", "delete")
    assert change.records[0][GHL_ID_FIELD] == "t7GhQm2LpX9wVb3NcR5d"


@pytest.mark.parametrize(
    "fixture, event_type", [("ghl_note_create", "NoteCreate"), ("ghl_opportunity_create", "OpportunityCreate")]
)
def test_unsupported_types_are_422_naming_the_type(fixture: str, event_type: str) -> None:
    with pytest.raises(WebhookRejected) as caught:
        normalize(body(fixture), None)
    assert (caught.value.status, caught.value.reason) == (422, "unsupported_event")
    assert event_type in caught.value.message and "ContactCreate" in caught.value.message


@pytest.mark.parametrize(
    "event_type", ["OpportunityUpdate", "OpportunityDelete", "AppointmentCreate", "InboundMessage"]
)
def test_other_known_ghl_types_are_unsupported(event_type: str) -> None:
    payload = {**data("ghl_contact_create"), "type": event_type}
    with pytest.raises(WebhookRejected) as caught:
        normalize(dumps(payload), None)
    assert caught.value.status == 422


def test_every_supported_type_normalises() -> None:
    for event_type, (obj, action) in EVENT_TYPES.items():
        payload = {"type": event_type, "locationId": "loc", "id": "abc", "contactId": "c1"}
        [change] = normalize(dumps(payload), None)
        assert (change.object, change.action) == (obj, action)
        assert change.webhook_id is None and change.occurred_at is None


@pytest.mark.parametrize(
    "patch, message",
    [
        ({"type": None}, "field 'type' is missing"),
        ({"type": 7}, "field 'type' must be a string, got a number"),
        ({"locationId": None}, "field 'locationId' is missing"),
        ({"id": ""}, "field 'id' must not be empty"),
        ({"webhookId": 12}, "field 'webhookId' must be a non-empty string"),
        ({"timestamp": "yesterday"}, "'yesterday' is not an ISO-8601 timestamp"),
        ({"tags": "inbound"}, "field 'tags' must be an array of strings"),
        ({"customFields": {"id": "x"}}, "field 'customFields' must be an array"),
        ({"customFields": [{"value": 1}]}, "customFields[0] must be an object with a string 'id'"),
    ],
)
def test_malformed_ghl_payloads_are_400(patch: dict[str, object], message: str) -> None:
    payload = {**data("ghl_contact_create"), **patch}
    payload = {k: v for k, v in payload.items() if v is not None or k not in patch}
    with pytest.raises(WebhookRejected) as caught:
        normalize(dumps(payload), None)
    assert caught.value.status == 400
    assert message in caught.value.message


def test_a_ghl_body_must_be_an_object() -> None:
    with pytest.raises(WebhookRejected, match="expected a JSON object, got an array") as caught:
        normalize(b"[]", None)
    assert caught.value.status == 400
