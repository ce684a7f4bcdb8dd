"""Salesforce Change Data Capture events to Changes."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import pytest

from circuit_host.connectors.crm.salesforce import SALESFORCE_CDC
from circuit_host.webhooks import DEFAULT_LIMITS, BodyLimits, Change, WebhookRejected
from tests.webhooks import helpers
from tests.webhooks.helpers import body, data, dumps


def normalize(raw: bytes, content_type: str | None, *, limits: BodyLimits = DEFAULT_LIMITS) -> list[Change]:
    return helpers.normalize(SALESFORCE_CDC.source, raw, content_type, limits=limits)


def header_of(payload: dict[str, Any]) -> dict[str, Any]:
    header: dict[str, Any] = payload["payload"]["ChangeEventHeader"]
    return header


def test_create_in_a_pub_sub_envelope() -> None:
    [change] = normalize(body("sfdc_contact_create"), "application/json; charset=utf-8")
    assert (change.object, change.action, change.source) == ("Contact", "insert", "salesforce-cdc")
    assert change.webhook_id == "0002343d-9d90-e395-ed20-cf416ba652ad:1"
    assert change.occurred_at == datetime(2026, 8, 3, 14, 35, 12, tzinfo=UTC)
    assert change.changed_fields is None
    [record] = change.records
    assert record["Id"] == "003Qy00000VLp01IAB"
    # compound fields are split into their parts: Name.* and MailingAddress.* -> Mailing*
    assert (record["Salutation"], record["FirstName"], record["LastName"]) == ("Ms.", "Priya", "Raman")
    assert (record["MailingStreet"], record["MailingPostalCode"]) == ("535 Mission St", "94105")
    assert record["Company_Size__c"] == 450 and record["Called_Business__c"] is True
    assert "ChangeEventHeader" not in record and "Name" not in record and "MailingAddress" not in record
    assert change.meta == {
        "change_origin": "com/salesforce/api/rest/61.0;client=web",
        "commit_user": "005Qy000001vI54YAE",
        "commit_number": 10716283339728,
        "transaction_key": "0002343d-9d90-e395-ed20-cf416ba652ad",
        "sequence_number": 1,
        "replay_id": 44817,
    }


def test_update_in_a_streaming_envelope_one_record_per_record_id() -> None:
    [change] = normalize(body("sfdc_contact_update_streaming"), "application/json")
    assert change.action == "update"
    assert change.webhook_id == "00051c9e-5ba7-1f2f-8a7e-6b9b31b70b5e:3"
    assert [r["Id"] for r in change.records] == ["003Qy00000VLp01IAB", "003Qy00000VLp02IAB"]
    expected = {
        "Title": None,  # nulledFields: a real change to null
        "MailingStreet": None,
        "MailingPostalCode": "94107",
        "Website_Visits__c": 17,
        "LastModifiedDate": "2026-08-03T15:02:47.000Z",
    }
    for record in change.records:
        assert {k: v for k, v in record.items() if k != "Id"} == expected  # other nulls mean "unchanged"
    assert change.changed_fields == [
        "Title",
        "MailingStreet",
        "MailingPostalCode",
        "Website_Visits__c",
        "Description",
        "LastModifiedDate",
    ]
    assert change.meta["diff_fields"] == ["Description"]  # the value was a diff: dropped, re-read it
    assert change.meta["replay_id"] == 44823


def test_delete_of_a_bare_payload() -> None:
    [change] = normalize(body("sfdc_contact_delete"), None)
    assert (change.action, change.records) == ("delete", [{"Id": "003Qy00000VLp03IAB"}])
    assert change.webhook_id == "0006a2bc-1d2e-3f40-5162-738495a6b7c8:1"


def test_undelete_with_a_geolocation_field() -> None:
    [change] = normalize(body("sfdc_account_undelete"), None)
    assert (change.object, change.action) == ("Account", "undelete")
    [record] = change.records
    assert record["Name"] == "Northwind Logistics"  # Account.Name is a plain field
    assert record["BillingCity"] == "San Francisco"
    assert record["Headquarters__Latitude__s"] == 37.7886


@pytest.mark.parametrize(
    "fixture, change_type", [("sfdc_gap_update", "GAP_UPDATE"), ("sfdc_gap_overflow", "GAP_OVERFLOW")]
)
def test_gap_events_are_422_and_say_to_resync(fixture: str, change_type: str) -> None:
    with pytest.raises(WebhookRejected) as caught:
        normalize(body(fixture), None)
    assert (caught.value.status, caught.value.reason) == (422, "unsupported_event")
    assert change_type in caught.value.message and "re-read the records" in caught.value.message


def test_unknown_change_type_is_422() -> None:
    payload = data("sfdc_contact_create")
    header_of(payload)["changeType"] = "MERGE"
    with pytest.raises(WebhookRejected, match="changeType 'MERGE' is not supported") as caught:
        normalize(dumps(payload), None)
    assert caught.value.status == 422


@pytest.mark.parametrize(
    "mutate, message",
    [
        (lambda p: p["payload"].pop("ChangeEventHeader"), "ChangeEventHeader: expected a JSON object, got null"),
        (lambda p: header_of(p).pop("entityName"), "field 'entityName' is missing"),
        (lambda p: header_of(p).update(entityName="Contact; DROP"), "is not a valid object name"),
        (lambda p: header_of(p).update(recordIds=[]), "recordIds must be a non-empty array"),
        (lambda p: header_of(p).update(recordIds=["003*"]), "recordIds[0] is not a 15- or 18-character"),
        (
            lambda p: header_of(p).update(recordIds=["003Qy00000VLp01IAB", 7]),
            "recordIds[1] is not a 15- or 18-character Salesforce id",
        ),
        (lambda p: header_of(p).update(recordIds=["003Qy00000VLp01", "003Qy00000VLp01"]), "recordIds has duplicates"),
        (lambda p: header_of(p).update(nulledFields="Title"), "nulledFields must be an array of field names"),
        (lambda p: p["payload"].update(Tags=["a"]), "field Tags must be a scalar or a compound field"),
        (lambda p: p["payload"].update({"bad name": 1}), "'bad name' is not a field name"),
    ],
)
def test_malformed_change_events_are_400(mutate: Any, message: str) -> None:
    payload = data("sfdc_contact_create")
    mutate(payload)
    with pytest.raises(WebhookRejected) as caught:
        normalize(dumps(payload), None)
    assert caught.value.status == 400, caught.value
    assert message in caught.value.message


def test_no_header_anywhere_says_which_shapes_are_accepted() -> None:
    with pytest.raises(WebhookRejected, match=r'\{"data": \{"payload"') as caught:
        normalize(b'{"event": {"replayId": 1}}', None)
    assert caught.value.status == 400


def test_an_unknown_compound_field_is_unsupported() -> None:
    payload = data("sfdc_contact_create")
    payload["payload"]["Weird"] = {"A": 1}
    with pytest.raises(WebhookRejected, match="compound field Weird is not supported") as caught:
        normalize(dumps(payload), None)
    assert caught.value.status == 422


def test_record_id_cap() -> None:
    payload = data("sfdc_contact_update_streaming")
    payload["data"]["payload"]["ChangeEventHeader"]["recordIds"] = [f"003Qy0000{i:09d}" for i in range(11)]
    with pytest.raises(WebhookRejected, match="11 recordIds, over the limit of 10") as caught:
        normalize(dumps(payload), None, limits=BodyLimits(max_cdc_record_ids=10))
    assert caught.value.status == 413


def test_without_transaction_key_there_is_no_webhook_id() -> None:
    payload = data("sfdc_contact_create")
    del header_of(payload)["transactionKey"]
    [change] = normalize(dumps(payload), None)
    assert change.webhook_id is None
