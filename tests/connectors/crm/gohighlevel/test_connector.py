"""GoHighLevel connector against a fake location on loopback: field mapping, custom fields, the query subset."""

from __future__ import annotations

import pytest

from circuit_host.connectors.crm import (
    CrmAuthError,
    GoHighLevelConnector,
    GoHighLevelSettings,
    Outbox,
    is_provisional,
)
from circuit_host.connectors.records import DmlOp
from circuit_host.errors import DmlError, QueryError

from ..conftest import dispatcher
from ..fakes import FakeGoHighLevel


def test_insert_maps_standard_and_custom_fields_and_caches_the_field_list(
    fake_ghl: FakeGoHighLevel, ghl: GoHighLevelConnector, sqlite_outbox: Outbox
) -> None:
    with ghl.begin() as tx:
        result = tx.dml(
            DmlOp.INSERT,
            "Contact",
            [
                {"FirstName": "Ada", "LastName": "L", "Email": "ada@x.test", "MailingPostalCode": "94105",
                 "LeadSource": "Web", "VLPR_Score__c": 87, "vlpr_grade__c": "A"},
                {"LastName": "Bo", "VLPR_Score__c": 12},
            ],
        )  # fmt: skip
        assert all(is_provisional(i) for i in result.ids)
        tx.commit()
    assert fake_ghl.writes() == []
    assert len(dispatcher(sqlite_outbox, "beta", ghl).dispatch_once().sent) == 1
    first, second = fake_ghl.writes("POST")
    assert first.path == "/contacts/" and first.headers["version"] == "2021-07-28"
    assert first.body == {
        "locationId": "loc123", "firstName": "Ada", "lastName": "L", "email": "ada@x.test", "postalCode": "94105",
        "source": "Web",
        "customFields": [
            {"id": "cfScore0000000000001", "field_value": 87},
            {"id": "cfGrade0000000000002", "field_value": "A"},
        ],
    }  # fmt: skip
    assert second.body["customFields"] == [{"id": "cfScore0000000000001", "field_value": 12}]
    assert len([r for r in fake_ghl.requests if r.path.endswith("/customFields")]) == 1


def test_query_subset_by_id_ids_email_and_tasks_by_contact(
    fake_ghl: FakeGoHighLevel, ghl: GoHighLevelConnector
) -> None:
    ada = fake_ghl.add_contact(
        firstName="Ada", email="ada@x.test", customFields=[{"id": "cfScore0000000000001", "value": 87}]
    )
    bo = fake_ghl.add_contact(firstName="Bo", email="bo@x.test")
    fake_ghl.tasks["t1"] = {
        "id": "t1",
        "contactId": ada,
        "title": "Call",
        "completed": True,
        "dueDate": "2024-06-01T00:00:00.000Z",
    }
    with ghl.begin() as tx:
        (row,) = tx.query("SELECT FirstName, VLPR_Score__c FROM Contact WHERE Id = :id", {"id": ada}, 10).records
        assert row == {"Id": ada, "FirstName": "Ada", "VLPR_Score__c": 87}
        rows = tx.query("SELECT Email FROM Contact WHERE Id IN :ids", {"ids": [ada, bo, "missing0000"]}, 10).records
        assert [r["Email"] for r in rows] == ["ada@x.test", "bo@x.test"]
        assert tx.query("SELECT Id FROM Contact WHERE Email = 'bo@x.test'", {}, 10).records == [{"Id": bo}]
        assert tx.query("SELECT COUNT() FROM Contact WHERE Id IN :ids", {"ids": [ada, bo]}, 10).total_size == 2
        (task,) = tx.query("SELECT Subject, Status, ActivityDate FROM Task WHERE WhoId = :c", {"c": ada}, 10).records
        assert task == {"Id": "t1", "Subject": "Call", "Status": "Completed", "ActivityDate": "2024-06-01"}


@pytest.mark.parametrize(
    ("soql", "message"),
    [
        ("SELECT Id FROM Contact", "with no WHERE clause"),
        ("SELECT Id FROM Contact WHERE LastName = 'x'", "WHERE on LastName ="),
        ("SELECT Id FROM Contact WHERE Id = 'a' OR Id = 'b'", "WHERE on OR"),
        ("SELECT Id FROM Contact WHERE Id != 'a'", "WHERE on Id !="),
        ("SELECT Id FROM Contact WHERE Id = 'a' ORDER BY Email", "ORDER BY is not supported"),
        ("SELECT Id FROM Task WHERE Id = 'a'", "WHERE on Id ="),
        ("SELECT Id FROM Opportunity WHERE Id = 'a'", "object Opportunity is not supported"),
        ("SELECT Title FROM Contact WHERE Id = 'a'", "Contact has no field Title"),
        ("SELECT Nope__c FROM Contact WHERE Id = 'a'", "no custom field Nope__c"),
    ],
)
def test_unsupported_queries_are_query_errors_naming_the_part(
    ghl: GoHighLevelConnector, soql: str, message: str
) -> None:
    with ghl.begin() as tx, pytest.raises(QueryError, match=message):
        tx.query(soql, {}, 10)


def test_task_under_a_provisional_contact_is_created_under_the_real_one(
    fake_ghl: FakeGoHighLevel, ghl: GoHighLevelConnector, sqlite_outbox: Outbox
) -> None:
    with ghl.begin() as tx:
        (contact,) = tx.dml(DmlOp.INSERT, "Contact", [{"LastName": "Ada"}]).ids
        (task,) = tx.dml(
            DmlOp.INSERT, "Task", [{"Subject": "Call", "WhoId": contact, "ActivityDate": "2024-07-01"}]
        ).ids
        tx.dml(DmlOp.UPDATE, "Task", [{"Id": task, "Status": "Completed"}])  # WhoId known from the insert
        tx.dml(DmlOp.UPDATE, "Contact", [{"Id": contact, "Phone": "555"}])
        tx.commit()
    assert len(dispatcher(sqlite_outbox, "beta", ghl).dispatch_once().sent) == 4
    (real,) = fake_ghl.contacts.values()
    (real_task,) = fake_ghl.tasks.values()
    assert real["phone"] == "555"
    assert real_task["contactId"] == real["id"] and real_task["completed"] is True
    assert real_task["dueDate"] == "2024-07-01T00:00:00.000Z"
    assert [r.path for r in fake_ghl.writes()][1:3] == [
        f"/contacts/{real['id']}/tasks",
        f"/contacts/{real['id']}/tasks/{real_task['id']}",
    ]


def test_unmapped_fields_and_unsupported_operations_are_dml_errors(ghl: GoHighLevelConnector) -> None:
    with ghl.begin() as tx:
        with pytest.raises(DmlError, match="row 0: field Title: not mapped to GoHighLevel Contact"):
            tx.dml(DmlOp.INSERT, "Contact", [{"Title": "CEO"}])
        with pytest.raises(DmlError, match="row 0: field Nope__c: no such custom field"):
            tx.dml(DmlOp.INSERT, "Contact", [{"Nope__c": 1}])
        with pytest.raises(DmlError, match="row 0: field WhoId: required"):
            tx.dml(DmlOp.INSERT, "Task", [{"Subject": "orphan"}])
        with pytest.raises(DmlError, match="row 0: field WhoId: required to change"):
            tx.dml(DmlOp.UPDATE, "Task", [{"Id": "unknownTask", "Subject": "x"}])
        with pytest.raises(DmlError, match="undelete"):
            tx.dml(DmlOp.UNDELETE, "Contact", [{"Id": "abc"}])


def test_rollback_sends_nothing_and_rate_limits_are_retried(
    fake_ghl: FakeGoHighLevel, ghl: GoHighLevelConnector, sqlite_outbox: Outbox
) -> None:
    with ghl.begin() as tx:
        tx.dml(DmlOp.INSERT, "Contact", [{"LastName": "Never"}])
        tx.rollback()
    with ghl.begin() as tx:
        tx.dml(DmlOp.INSERT, "Contact", [{"LastName": "Once"}])
        tx.commit()
    fake_ghl.fail(429, path="/contacts/", method="POST", headers={"Retry-After": "0"}, body={"message": "slow down"})
    d = dispatcher(sqlite_outbox, "beta", ghl)
    assert d.dispatch_once().retrying
    assert d.dispatch_once().sent
    assert [c["lastName"] for c in fake_ghl.contacts.values()] == ["Once"]


def test_fetch_reads_contacts_with_custom_fields_and_pending_changes(
    fake_ghl: FakeGoHighLevel, ghl: GoHighLevelConnector
) -> None:
    ada = fake_ghl.add_contact(firstName="Ada", customFields=[{"id": "cfGrade0000000000002", "value": "B"}])
    with ghl.begin() as tx:
        tx.dml(DmlOp.UPDATE, "Contact", [{"Id": ada, "VLPR_Grade__c": "A"}])
        (record,) = tx.fetch("Contact", [ada, "gone000000000000000"])
    assert record["Id"] == ada and record["FirstName"] == "Ada" and record["VLPR_Grade__c"] == "A"
    assert record["vlpr_score__c"] is None and record["IsDeleted"] is False
    assert "vlpr_grade__c" not in record  # one key per field, whatever its case


def test_wrong_api_key_is_a_clear_auth_error(fake_ghl: FakeGoHighLevel, sqlite_outbox: Outbox) -> None:
    settings = GoHighLevelSettings(base_url=fake_ghl.url, location_id="loc123", api_key="wrong")
    connector = GoHighLevelConnector(settings, sqlite_outbox, "beta")
    with connector.begin() as tx, pytest.raises(CrmAuthError, match=r"GoHighLevel.*401.*credentials were refused"):
        tx.query("SELECT Id FROM Contact WHERE Id = 'abc'", {}, 10)
    assert "wrong" not in repr(settings)
    connector.close()
