"""A CRM as an environment's system of record: the setting, the connection check, resends, the execution link."""

from __future__ import annotations

import socket

import pytest

from circuit_host.connectors.crm import GoHighLevelConnector, Outbox
from circuit_host.connectors.crm.system_of_record import check_connection, crm_names, open_connector
from circuit_host.connectors.records import DmlOp
from circuit_host.errors import Rejected
from circuit_host.platform.settings import TenantSettings
from tests.conftest import TEST_BOX

from .conftest import dispatcher
from .fakes import FakeGoHighLevel, FakeSalesforce


def ghl_selection(fake: FakeGoHighLevel, **overrides: object) -> dict[str, object]:
    selection = {"crm": "gohighlevel", "location_id": fake.location_id, "api_key": fake.api_key, "base_url": fake.url}
    return selection | overrides


def test_the_choices_come_from_the_registry() -> None:
    assert crm_names() == ("circuitdb", "gohighlevel", "salesforce")


def test_a_selection_is_validated_by_its_crms_model_and_its_token_is_write_only(fake_ghl: FakeGoHighLevel) -> None:
    settings = TenantSettings.validated({"system_of_record": {"production": ghl_selection(fake_ghl)}})
    shown = settings.redacted(TEST_BOX.fingerprint)["system_of_record"]["production"]
    assert shown["api_key"] == {"set": True, "fingerprint": TEST_BOX.fingerprint(fake_ghl.api_key)}
    assert fake_ghl.api_key not in repr(settings) and fake_ghl.api_key not in str(shown)
    stored = settings.to_storage()
    assert stored["system_of_record"]["production"]["api_key"] == fake_ghl.api_key  # sealed by the platform
    assert TenantSettings.model_validate(stored) == settings
    assert TenantSettings.validated({"system_of_record": {"dev": {"crm": "circuitdb"}}}).system_of_record["dev"]

    refused = {
        "crm 'hubspot' is not one of circuitdb, gohighlevel, salesforce": {"production": {"crm": "hubspot"}},
        "gohighlevel: api_key: Field required": {"production": {"crm": "gohighlevel", "location_id": "x"}},
        "gohighlevel: tokn: unknown setting": {"production": ghl_selection(fake_ghl, tokn="x")},
        "salesforce: Value error, set access_token, or client_id and client_secret": {
            "production": {"crm": "salesforce", "instance_url": "https://acme.my.salesforce.com"}
        },
        'expected {"crm": one of': {"production": "gohighlevel"},
        "unknown environment 'qa'": {"qa": {"crm": "circuitdb"}},
        "base_url: Input should be a valid URL": {"dev": ghl_selection(fake_ghl, base_url="not a url")},
    }
    for message, value in refused.items():
        with pytest.raises(Rejected) as caught:
            TenantSettings.validated({"system_of_record": value})
        assert message in str(caught.value), (message, str(caught.value))


def test_the_connection_check_answers_with_the_crms_own_message(
    fake_ghl: FakeGoHighLevel, fake_sf: FakeSalesforce, sqlite_outbox: Outbox
) -> None:
    def selection(value: dict[str, object]) -> object:
        return TenantSettings.validated({"system_of_record": {"dev": value}}).system_of_record["dev"]

    check_connection("dev", selection(ghl_selection(fake_ghl)), sqlite_outbox)  # type: ignore[arg-type]
    sf = {"crm": "salesforce", "instance_url": fake_sf.url, "client_id": "client-id", "client_secret": "client-secret"}
    check_connection("dev", selection(sf), sqlite_outbox)  # type: ignore[arg-type]
    assert [r.path for r in fake_sf.requests][-1] == "/services/data/v61.0/limits"

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        closed = f"http://127.0.0.1:{sock.getsockname()[1]}"
    cases = [
        (ghl_selection(fake_ghl, api_key="pit-wrong"), "answered 401: the configured credentials were refused"),
        (ghl_selection(fake_ghl, base_url=closed), "ConnectError"),
        ({**sf, "client_secret": "nope"}, "the client credentials were refused"),
    ]
    for value, message in cases:
        with pytest.raises(Rejected) as caught:
            check_connection("dev", selection(value), sqlite_outbox)  # type: ignore[arg-type]
        assert str(caught.value).startswith("system_of_record.dev: the CRM refused the test request: ")
        assert message in str(caught.value)
    fake_ghl.revoke()
    with pytest.raises(Rejected, match="Invalid JWT"):
        check_connection("dev", selection(ghl_selection(fake_ghl)), sqlite_outbox)  # type: ignore[arg-type]


def insert_and_send_after_a_lost_answer(
    ghl: GoHighLevelConnector, fake: FakeGoHighLevel, outbox: Outbox, obj: str, rows: list[dict[str, object]]
) -> None:
    with ghl.begin() as tx:
        tx.dml(DmlOp.INSERT, obj, rows)
        tx.commit()
    fake.fail(500, path="/contacts/", method="POST", after_applying=True, body={"message": "lost"})
    send = dispatcher(outbox, "beta", ghl)
    assert send.dispatch_once().retrying  # the CRM applied it; the answer was lost
    assert send.dispatch_once().sent


def test_a_ghl_create_resent_after_a_lost_answer_adopts_the_record_it_made(
    fake_ghl: FakeGoHighLevel, ghl: GoHighLevelConnector, sqlite_outbox: Outbox
) -> None:
    contact = {"FirstName": "Ada", "LastName": "L", "Email": "ada@x.test"}
    insert_and_send_after_a_lost_answer(ghl, fake_ghl, sqlite_outbox, "Contact", [contact])
    assert len(fake_ghl.contacts) == 1
    [entry] = sqlite_outbox.entries("beta")
    [real] = sqlite_outbox.real_ids("beta", entry.provisional).values()  # type: ignore[arg-type]
    assert real in fake_ghl.contacts

    task = {"Subject": "Call Ada", "WhoId": real, "Priority": "High"}
    insert_and_send_after_a_lost_answer(ghl, fake_ghl, sqlite_outbox, "Task", [task])
    assert [t["title"] for t in fake_ghl.tasks.values()] == ["Call Ada"]

    # A second, identical task meant as a new one is created: the first is already some entry's record.
    with ghl.begin() as tx:
        tx.dml(DmlOp.INSERT, "Task", [task])
        tx.commit()
    fake_ghl.fail(503, path="/tasks", method="POST", body={"message": "busy"})  # refused, not applied
    send = dispatcher(sqlite_outbox, "beta", ghl)
    send.dispatch_once()
    send.dispatch_once()
    assert len(fake_ghl.tasks) == 2


def test_the_remaining_window_a_contact_without_email_is_resent_blind(
    fake_ghl: FakeGoHighLevel, ghl: GoHighLevelConnector, sqlite_outbox: Outbox
) -> None:
    insert_and_send_after_a_lost_answer(ghl, fake_ghl, sqlite_outbox, "Contact", [{"LastName": "NoMail"}])
    assert len(fake_ghl.contacts) == 2  # documented in the README ("What remains")


def test_entries_are_linked_to_their_execution_and_a_dead_one_requeued(
    fake_ghl: FakeGoHighLevel, sqlite_outbox: Outbox
) -> None:
    selection = TenantSettings.validated({"system_of_record": {"dev": ghl_selection(fake_ghl)}}).system_of_record
    connector = open_connector(selection["dev"], sqlite_outbox, "acme:dev:gohighlevel")
    assert connector is not None
    tx = connector.begin()
    tx.dml(DmlOp.INSERT, "Contact", [{"LastName": "Kept", "Email": "k@x.test"}])
    with pytest.raises(RuntimeError), tx.savepoint():
        tx.dml(DmlOp.INSERT, "Contact", [{"LastName": "Dropped"}])
        raise RuntimeError("a trigger failed")
    tx.commit()
    ids = tx.writer.entry_ids  # type: ignore[attr-defined]
    assert len(ids) == 1
    sqlite_outbox.link_execution(ids, "exec-1")
    assert [e.execution_id for e in sqlite_outbox.of_execution("exec-1")] == ["exec-1"]
    assert [e.rows[0]["LastName"] for e in sqlite_outbox.listed(["acme:dev:gohighlevel"])] == ["Kept"]

    fake_ghl.fail(422, path="/contacts/", method="POST", body={"message": "email is invalid"})
    assert dispatcher(sqlite_outbox, "acme:dev:gohighlevel", connector).dispatch_once().dead == ids
    [dead] = sqlite_outbox.listed(["acme:dev:gohighlevel"], "dead")
    assert "email is invalid" in (dead.last_error or "")
    assert sqlite_outbox.requeue(dead.id) and not sqlite_outbox.requeue(dead.id)
    assert dispatcher(sqlite_outbox, "acme:dev:gohighlevel", connector).dispatch_once().sent == ids
    connector.close()
