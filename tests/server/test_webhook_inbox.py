"""The webhook inbox against real servers on loopback: concurrent copies of one delivery (one server
on SQLite; two servers of a fleet on PostgreSQL), and a worker that died after the records committed
but before the inbox heard of it."""

from __future__ import annotations

import hashlib
import threading
from dataclasses import replace
from pathlib import Path

import httpx

from circuit_host.connectors.crm import crm_registry
from circuit_host.server.webhook_inbox import entries_of, receipt
from circuit_host.webhooks import DEFAULT_LIMITS, Change
from tests.server.conftest import LiveServer, applied
from tests.server.routers.conftest import generic_event, generic_signed
from tests.server.test_end_to_end import deploy


def contacts(client: httpx.Client) -> list[str]:
    records = client.get("/v1/query", params={"soql": "SELECT LastName FROM Contact ORDER BY LastName"}).json()
    return [r["LastName"] for r in records["records"]]


def deliver_at_once(
    senders: list[httpx.Client], path: str, raw: bytes, headers: dict[str, str]
) -> list[httpx.Response]:
    """One copy of a delivery from each sender, released together by a barrier; the senders closed after."""
    start = threading.Barrier(len(senders))
    answers: list[httpx.Response] = []

    def deliver(client: httpx.Client) -> None:
        start.wait()
        answers.append(client.post(path, content=raw, headers=headers))

    threads = [threading.Thread(target=deliver, args=(client,)) for client in senders]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    for client in senders:
        client.close()
    return answers


def test_eight_concurrent_copies_of_one_signed_delivery_are_stored_and_applied_once(
    live: LiveServer, vlpr_bundles: dict[str, Path]
) -> None:
    tenant = live.tenant("acme")
    raw, headers = generic_signed(generic_event({"LastName": "Retried"}, event_id="retry-storm"))
    with tenant.client(live) as admin:
        deploy(admin, vlpr_bundles["1.0.0"])
        senders = [tenant.client(live) for _ in range(8)]
        answers = deliver_at_once(senders, "/v1/hooks/generic", raw, headers)
        assert sorted(a.status_code for a in answers) == [200] * 7 + [202]
        [accepted] = [a for a in answers if a.status_code == 202]
        assert all(a.json() == {"duplicate": True} for a in answers if a.status_code == 200)
        [entry] = applied(admin, accepted)
        assert entry["state"] == "applied" and entry["execution"]["status"] == "ok"
        assert contacts(admin) == ["Retried"]
        executions = admin.get("/v1/executions").json()["executions"]
        assert [e["trigger"] for e in executions if e["trigger"].startswith("generic:")] == ["generic:Contact.insert"]
        assert len(admin.get("/v1/inbox").json()["entries"]) == 1


def test_rows_whose_records_committed_before_a_crash_are_marked_applied_not_applied_again(
    live: LiveServer, vlpr_bundles: dict[str, Path]
) -> None:
    """A worker that committed the records (and their receipts) and died before marking the rows
    applied: the next attempt finds the receipts, runs no execution and marks the rows applied."""
    tenant = live.tenant("acme")
    state = live.state
    generic = crm_registry.find("generic")
    assert generic is not None
    event = generic_event({"LastName": "Once"})
    raw, _ = generic_signed(event)
    configuration = state.platform.tenants.get_settings(tenant.id).section(generic.configuration)
    with tenant.client(live) as admin:
        deploy(admin, vlpr_bundles["1.0.0"])
        changes = generic.normalize(event, configuration, DEFAULT_LIMITS)
        # stored as intake stores it; the job waits a minute, so no worker takes it meanwhile
        [row_id] = state.inbox.accept(tenant.id, "production", "generic", changes, raw, window_ms=60_000) or []
        [row] = state.inbox.rows.list_rows(tenant.id)
        # the dying worker's execution: records and receipt committed, the inbox not told
        [execution] = state.apply_webhook_changes(tenant.id, "production", "generic", [row.change], [receipt(row_id)])
        assert execution.status == "ok"
        assert admin.get(f"/v1/inbox/{row_id}").json()["state"] == "pending"
        state.inbox.apply_batch(tenant.id, "production", [row])  # the next attempt, as the apply job runs it
        entry = admin.get(f"/v1/inbox/{row_id}").json()
        assert entry["state"] == "applied" and entry["execution_id"] is None
        assert contacts(admin) == ["Once"]
        executions = admin.get("/v1/executions").json()["executions"]
        assert len([e for e in executions if e["trigger"].startswith("generic:")]) == 1  # no second execution
        # and a transaction carrying a receipt recorded before cannot commit
        [again] = state.apply_webhook_changes(tenant.id, "production", "generic", [row.change], [receipt(row_id)])
        assert again.status != "ok" and not again.committed
        assert contacts(admin) == ["Once"]


def test_a_change_of_more_than_200_records_is_stored_in_parts_under_one_dedupe_key() -> None:
    big = Change("cdc-1", None, "Contact", "insert", [{"LastName": f"L{n}"} for n in range(450)], source="generic")
    entries = entries_of([big], b"{}")
    assert [(e.dedupe_key, e.part, len(e.change.records)) for e in entries] == [
        ("cdc-1", 0, 200),
        ("cdc-1", 1, 200),
        ("cdc-1", 2, 50),
    ]
    unnamed = replace(big, webhook_id=None, records=big.records[:1])
    [entry] = entries_of([unnamed], b'{"signed": "body"}')
    assert entry.dedupe_key == "sha256:" + hashlib.sha256(b'{"signed": "body"}').hexdigest()


def test_copies_of_one_delivery_sent_to_two_servers_of_a_fleet_are_stored_and_applied_once(
    fleet: tuple[LiveServer, LiveServer], vlpr_bundles: dict[str, Path]
) -> None:
    a, b = fleet
    tenant = a.tenant("acme")
    raw, headers = generic_signed(generic_event({"LastName": "Fleet"}, event_id="fleet-1"))
    with tenant.client(a) as admin:
        deploy(admin, vlpr_bundles["1.0.0"], env="dev")
        senders = [tenant.client(server) for server in (a, b) * 4]
        answers = deliver_at_once(senders, "/v1/hooks/generic?env=dev", raw, headers)
        assert sorted(a.status_code for a in answers) == [200] * 7 + [202]
        [accepted] = [answer for answer in answers if answer.status_code == 202]
        [entry] = applied(admin, accepted)
        assert entry["state"] == "applied" and entry["execution"]["status"] == "ok"
        records = admin.get("/v1/query", params={"soql": "SELECT LastName FROM Contact", "env": "dev"}).json()
        assert [r["LastName"] for r in records["records"]] == ["Fleet"]
        executions = admin.get("/v1/executions").json()["executions"]
        assert len([e for e in executions if e["trigger"].startswith("generic:")]) == 1
