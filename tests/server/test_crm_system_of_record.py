"""A CRM as an environment's system of record, through the server: settings, webhooks, the outbox dispatcher.

The server runs in this process (uvicorn on loopback) with a fast retry policy; the CRMs are the
fake GoHighLevel and Salesforce servers on loopback (tests/connectors/crm/fakes.py).
"""

from __future__ import annotations

import base64
import json
import socket
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from circuit_host.connectors.crm import RetryPolicy
from circuit_host.server import ServerSettings
from circuit_host.server.state import ServerState
from tests.connectors.crm.fakes import FakeGoHighLevel, FakeSalesforce
from tests.server.conftest import GHL_LOCATION, LiveServer, Tenant, executions_of, serve
from tests.server.test_end_to_end import deploy, ghl_contact, post_ghl, post_signed

FAST = RetryPolicy(max_attempts=3, base_delay_s=0.05, max_delay_s=0.2, jitter=0.0, lease_s=2.0)
GHL_INPUTS = {  # the fake location's custom-field ids -> the circuit's input fields
    "cfSize00000000000004": "Company_Size__c",
    "cfVisit0000000000005": "Website_Visits__c",
    "cfOpens0000000000006": "Emails_Opened__c",
    "cfCall00000000000007": "Called_Business__c",
}
SCORE, GRADE, NEXT = "cfScore0000000000001", "cfGrade0000000000002", "cfNext00000000000003"


@pytest.fixture
def crm_live(tmp_path: Path) -> Iterator[LiveServer]:
    settings = ServerSettings(data_dir=tmp_path / "data", outbox_retry=FAST, outbox_poll_s=0.05)
    state = ServerState(settings)
    try:
        yield from serve(state, settings)
    finally:
        state.close()


def eventually(check: Callable[[], bool], timeout_s: float = 15.0) -> None:
    deadline = time.monotonic() + timeout_s
    while not check():
        if time.monotonic() > deadline:
            raise AssertionError("condition not reached in time")
        time.sleep(0.05)


def ghl_selection(fake: FakeGoHighLevel, **overrides: Any) -> dict[str, Any]:
    selection = {"crm": "gohighlevel", "location_id": fake.location_id, "api_key": fake.api_key, "base_url": fake.url}
    return selection | overrides


def hot_lead(fake: FakeGoHighLevel) -> dict[str, Any]:
    """A contact GHL already holds, and its ContactCreate webhook."""
    values = {"cfSize00000000000004": 450, "cfVisit0000000000005": 14, "cfOpens0000000000006": 6}
    contact_id = fake.add_contact(
        firstName="Priya",
        lastName="Raman",
        email="priya@acme-robotics.com",
        source="Referral",
        postalCode="94105",
        customFields=[{"id": k, "value": v} for k, v in values.items()]
        + [{"id": "cfCall00000000000007", "value": True}],
    )
    custom = [{"id": k, "value": v} for k, v in {**values, "cfCall00000000000007": True}.items()]
    return ghl_contact(id=contact_id, customFields=custom)


def ghl_tenant(live: LiveServer, fake: FakeGoHighLevel, vlpr: Path) -> Tenant:
    tenant = live.tenant("acme")
    with tenant.client(live) as client:
        deploy(client, vlpr, env="dev")
        answer = client.patch(
            "/v1/settings", json={"ghl_custom_fields": GHL_INPUTS, "system_of_record": {"dev": ghl_selection(fake)}}
        )
        assert answer.status_code == 200, answer.text
        assert answer.json()["system_of_record"]["dev"]["api_key"]["set"] is True
        assert fake.api_key not in answer.text
    return tenant


@pytest.fixture
def ghl_fake() -> Iterator[FakeGoHighLevel]:
    fake = FakeGoHighLevel(location_id=GHL_LOCATION)
    yield fake
    fake.close()


def contact_updates(fake: FakeGoHighLevel, contact_id: str) -> list[dict[str, Any]]:
    return [r.body for r in fake.writes("PUT") if r.path == f"/contacts/{contact_id}"]


def task_creates(fake: FakeGoHighLevel, contact_id: str) -> list[dict[str, Any]]:
    return [r.body for r in fake.writes("POST") if r.path == f"/contacts/{contact_id}/tasks"]


def test_a_ghl_contact_create_is_scored_in_ghl_with_one_update_and_one_task(
    crm_live: LiveServer, ghl_fake: FakeGoHighLevel, vlpr_bundles: dict[str, Path]
) -> None:
    tenant = ghl_tenant(crm_live, ghl_fake, vlpr_bundles["1.0.0"])
    payload = hot_lead(ghl_fake)
    contact_id = payload["id"]
    with tenant.client(crm_live) as client:
        [execution] = executions_of(client, post_ghl(client, tenant, payload, "/v1/hooks/ghl?env=dev"))
        assert execution["status"] == "ok", execution
        eventually(lambda: len(task_creates(ghl_fake, contact_id)) == 1)
        eventually(lambda: client.get("/v1/outbox", params={"state": "sent"}).json().__len__() == 2)
        detail = client.get(f"/v1/executions/{execution['id']}").json()
        assert [(w["operation"], w["object"], w["state"]) for w in detail["crm_writes"]] == [
            ("update", "Contact", "sent"),
            ("create", "Task", "sent"),
        ]
    [update] = contact_updates(ghl_fake, contact_id)
    written = {c["id"]: c["field_value"] for c in update["customFields"]}
    assert written[SCORE] >= 70 and written[GRADE] == "A" and written[NEXT] == "Call within 1 hour"
    [task] = task_creates(ghl_fake, contact_id)
    assert task["title"].startswith("CRITICAL: call Priya Raman") and task["completed"] is False
    assert [c["id"] for c in ghl_fake.writes("POST") if c.path == "/contacts/"] == []  # the contact is not copied
    assert len(ghl_fake.contacts) == 1 and len(ghl_fake.tasks) == 1
    with tenant.client(crm_live) as client:  # the records API reads where the records live
        soql = f"SELECT LastName, VLPR_Grade__c FROM Contact WHERE Id = '{contact_id}'"
        answer = client.get("/v1/query", params={"soql": soql, "env": "dev"})
        assert answer.json()["records"] == [{"Id": contact_id, "LastName": "Raman", "VLPR_Grade__c": "A"}]
        ghl_fake.revoke()
        refused = client.get("/v1/query", params={"soql": soql, "env": "dev"})
        assert refused.status_code == 502 and "Invalid JWT" in refused.json()["detail"]


def test_a_task_create_whose_answer_was_lost_is_not_created_twice(
    crm_live: LiveServer, ghl_fake: FakeGoHighLevel, vlpr_bundles: dict[str, Path]
) -> None:
    tenant = ghl_tenant(crm_live, ghl_fake, vlpr_bundles["1.0.0"])
    ghl_fake.fail(502, path="/tasks", method="POST", after_applying=True, body={"message": "Bad gateway"})
    ghl_fake.fail(429, path="/tasks", method="GET", headers={"retry-after": "0.2"}, body={"message": "slow down"})
    payload = hot_lead(ghl_fake)
    with tenant.client(crm_live) as client:
        assert executions_of(client, post_ghl(client, tenant, payload, "/v1/hooks/ghl?env=dev"))[0]["status"] == "ok"
        eventually(lambda: [e["state"] for e in client.get("/v1/outbox").json()] == ["sent", "sent"])
        [task_entry, _] = client.get("/v1/outbox").json()
        assert task_entry["attempts"] == 3  # lost answer; 429 on the look-up; found the task it had created
    assert len(task_creates(ghl_fake, payload["id"])) == 1 and len(ghl_fake.tasks) == 1


def test_a_revoked_token_is_retried_then_dead_lettered_with_the_crms_message_and_retried_by_an_operator(
    crm_live: LiveServer, ghl_fake: FakeGoHighLevel, vlpr_bundles: dict[str, Path]
) -> None:
    tenant = ghl_tenant(crm_live, ghl_fake, vlpr_bundles["1.0.0"])
    # 503 with Retry-After: the first write backs off (holding back the task behind it) while the token is revoked
    ghl_fake.fail(503, path="/contacts/gh", method="PUT", headers={"retry-after": "3"}, body={"message": "try later"})
    payload = hot_lead(ghl_fake)
    with tenant.client(crm_live) as client:
        execution = executions_of(client, post_ghl(client, tenant, payload, "/v1/hooks/ghl?env=dev"))[0]
        assert execution["status"] == "ok"
        ghl_fake.revoke()  # while the first write backs off
        eventually(lambda: len(client.get("/v1/outbox", params={"state": "dead"}).json()) == 2)
        dead = client.get("/v1/outbox", params={"state": "dead"}).json()
        for entry in dead:
            assert entry["attempts"] == FAST.max_attempts and entry["execution_id"] == execution["id"]
            assert "401" in entry["last_error"] and "Invalid JWT" in entry["last_error"]
        detail = client.get(f"/v1/executions/{execution['id']}").json()
        assert [w["state"] for w in detail["crm_writes"]] == ["dead", "dead"]
        assert all("Invalid JWT" in w["last_error"] for w in detail["crm_writes"])
        assert ghl_fake.tasks == {}

        read_key = client.post("/v1/keys", json={"scopes": ["read"], "label": "viewer"}).json()["key"]
        with tenant.client(crm_live, read_key) as viewer:
            assert len(viewer.get("/v1/outbox").json()) == 2
            assert viewer.post(f"/v1/outbox/{dead[0]['id']}/retry").status_code == 403
        ghl_fake.revoked = False  # the operator fixed the token
        for entry in reversed(dead):  # oldest first: the update, then the task
            retried = client.post(f"/v1/outbox/{entry['id']}/retry")
            assert retried.status_code == 200 and retried.json()["state"] == "pending", retried.text
        eventually(lambda: all(e["state"] == "sent" for e in client.get("/v1/outbox").json()))
        assert client.post(f"/v1/outbox/{dead[0]['id']}/retry").status_code == 409  # sent: nothing to retry
        assert client.post("/v1/outbox/999999/retry").status_code == 404
        assert client.post(f"/v1/outbox/{2**64}/retry").status_code == 422  # not a database integer
        assert client.get("/v1/outbox", params={"before": 2**64}).status_code == 422
    assert len(contact_updates(ghl_fake, payload["id"])) == 2  # the one answered 503, then the one applied
    stored = {c["id"]: c["value"] for c in ghl_fake.contacts[payload["id"]]["customFields"]}
    assert stored[GRADE] == "A" and len(ghl_fake.tasks) == 1


def closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def test_saving_an_unreachable_or_refusing_crm_is_422_with_the_crms_answer_and_changes_nothing(
    crm_live: LiveServer, ghl_fake: FakeGoHighLevel
) -> None:
    tenant = crm_live.tenant("acme")
    with tenant.client(crm_live) as client:
        cases = {
            "ConnectError": ghl_selection(ghl_fake, base_url=f"http://127.0.0.1:{closed_port()}"),
            "Invalid JWT": ghl_selection(ghl_fake, api_key="pit-wrong"),
            "does not have access to this location": ghl_selection(ghl_fake, location_id="loc-other"),
            "crm 'hubspot' is not one of circuitdb, gohighlevel, salesforce": {"crm": "hubspot"},
            "api_key: Field required": {"crm": "gohighlevel", "location_id": "x"},
            "unknown environment 'qa'": None,
        }
        for expected, selection in cases.items():
            body = {"system_of_record": {"dev": selection} if selection is not None else {"qa": {"crm": "circuitdb"}}}
            answer = client.patch("/v1/settings", json=body)
            assert answer.status_code == 422, (expected, answer.text)
            assert expected in answer.json()["detail"], (expected, answer.json())
        assert client.get("/v1/settings").json()["system_of_record"] == {}


def test_an_unsigned_or_forged_webhook_changes_nothing_in_the_crm(
    crm_live: LiveServer, ghl_fake: FakeGoHighLevel, vlpr_bundles: dict[str, Path]
) -> None:
    tenant = ghl_tenant(crm_live, ghl_fake, vlpr_bundles["1.0.0"])
    raw = json.dumps(hot_lead(ghl_fake)).encode()
    forged = tenant.ghl_key.sign(raw + b" ")
    with tenant.client(crm_live) as client:
        for headers in ({}, {"x-ghl-signature": base64.b64encode(forged).decode()}):
            answer = client.post(
                "/v1/hooks/ghl?env=dev", content=raw, headers={"content-type": "application/json", **headers}
            )
            assert answer.status_code == 401
        time.sleep(0.3)
        assert client.get("/v1/outbox").json() == []
    assert ghl_fake.writes() == []


def test_another_crms_change_is_refused_where_ghl_holds_the_records(
    crm_live: LiveServer, ghl_fake: FakeGoHighLevel, vlpr_bundles: dict[str, Path]
) -> None:
    tenant = ghl_tenant(crm_live, ghl_fake, vlpr_bundles["1.0.0"])
    created = json.loads((Path(__file__).parents[1] / "webhooks" / "payloads" / "sfdc_contact_create.json").read_text())
    with tenant.client(crm_live) as client:
        answer = post_signed(client, "/v1/hooks/salesforce-cdc?env=dev", created)
        assert answer.status_code == 422 and "live in GoHighLevel" in answer.json()["detail"]
    assert ghl_fake.writes() == []


def test_a_salesforce_cdc_create_is_scored_in_salesforce(
    crm_live: LiveServer, fake_sf: FakeSalesforce, vlpr_bundles: dict[str, Path]
) -> None:
    tenant = crm_live.tenant("acme")
    created = json.loads((Path(__file__).parents[1] / "webhooks" / "payloads" / "sfdc_contact_create.json").read_text())
    fields = {k: v for k, v in created["payload"].items() if k != "ChangeEventHeader" and not isinstance(v, dict)}
    contact_id = fake_sf.add("Contact", **fields)
    created["payload"]["ChangeEventHeader"]["recordIds"] = [contact_id]
    selection = {
        "crm": "salesforce",
        "instance_url": fake_sf.url,
        "client_id": fake_sf.client_id,
        "client_secret": fake_sf.client_secret,
        "idempotency_field": "Circuit_Provisional_Id__c",
    }
    with tenant.client(crm_live) as client:
        deploy(client, vlpr_bundles["1.0.0"], env="dev")
        assert client.patch("/v1/settings", json={"system_of_record": {"dev": selection}}).status_code == 200
        answer = post_signed(client, "/v1/hooks/salesforce-cdc?env=dev", created)
        assert executions_of(client, answer)[0]["status"] == "ok", answer.json()
        eventually(lambda: len(fake_sf.all("Task")) == 1 and fake_sf.all("Contact")[0].get("VLPR_Grade__c") == "A")
    [task] = fake_sf.all("Task")
    assert task["WhoId"] == contact_id and task["Subject"].startswith("CRITICAL: call")
    assert len(fake_sf.all("Contact")) == 1
