"""/v1/hooks and /v1/inbox: CRM webhooks in, authenticated per source, stored, then run through the
deployed triggers by workers.

Two ways in: an environment's secret URL (``/v1/hooks/{source}/{token}``, no API key) or an API
key with the ``webhook`` scope (``/v1/hooks/{source}?env=``). Either way the body must be
authentic (GoHighLevel's Ed25519 signature; ``X-Circuit-Signature`` for generic and Salesforce
CDC relays) and fresh. An accepted delivery is stored in the inbox and answered 202 with its
inbox ids; a delivery stored before is answered ``200 {"duplicate": true}``. Tests wait for the
inbox entries to be applied (``applied``) rather than sleeping.
"""

from __future__ import annotations

import hashlib
import json
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx
import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from circuit_host.jobs import RetryPolicy
from tests.server.conftest import GHL_LOCATION, applied, executions_of
from tests.server.routers.conftest import (
    OTHER_SCOPE,
    Tenant,
    circuit_signed,
    deploy,
    generic_event,
    generic_signed,
    ghl_signed,
    problem,
    query,
)
from tests.server.test_end_to_end import ghl_contact

Signed = tuple[bytes, dict[str, str]]
Tamper = Callable[[bytes, dict[str, str]], Signed]
SFDC_CREATE = Path(__file__).resolve().parents[2] / "webhooks" / "payloads" / "sfdc_contact_create.json"


SHOWN: dict[tuple[str, str], dict[str, str]] = {}  # (tenant, env) -> its webhook URLs, shown once (stored hashed)


def hook_path(tenant: Tenant, source: str, env: str = "dev") -> str:
    """The path of an environment's webhook URL for ``source``."""
    if (tenant.id, env) not in SHOWN:
        answer = tenant.admin.get(f"/v1/environments/{env}/webhooks")
        assert answer.status_code == 200, answer.text
        SHOWN[tenant.id, env] = answer.json()["urls"]
    return httpx.URL(SHOWN[tenant.id, env][source]).path


def post(client: httpx.Client, path: str, signed: Signed) -> httpx.Response:
    raw, headers = signed
    return client.post(path, content=raw, headers=headers)


def contacts(tenant: Tenant, env: str = "dev") -> list[str]:
    """The last names of the environment's Contacts."""
    return [r["LastName"] for r in query(tenant.admin, "SELECT LastName FROM Contact ORDER BY LastName", env=env)]


def ghl_contacts(tenant: Tenant, env: str = "dev") -> list[dict[str, Any]]:
    return query(tenant.admin, "SELECT LastName, GHL_Id__c FROM Contact", env=env)


def duplicate(answer: httpx.Response) -> None:
    """A repeated delivery: 200 so the sender stops retrying, and nothing stored."""
    assert answer.status_code == 200, answer.text
    assert answer.json() == {"duplicate": True}


@pytest.fixture
def lpr(acme: Tenant, vlpr_bundles: dict[str, Path]) -> Tenant:
    """acme with Virtual LPR active in dev."""
    deploy(acme.admin, vlpr_bundles["1.0.0"])
    return acme


# --- GoHighLevel -------------------------------------------------------------------------------------


def test_a_signed_ghl_contact_runs_the_trigger_in_the_urls_environment(lpr: Tenant) -> None:
    anonymous = lpr.client(None)
    answer = post(anonymous, hook_path(lpr, "ghl"), ghl_signed(lpr.ghl_key, ghl_contact()))
    assert answer.status_code == 202, answer.text
    assert answer.json()["accepted"] == 1 and len(answer.json()["inbox_ids"]) == 1
    [execution] = executions_of(lpr.admin, answer)
    assert execution["status"] == "ok"
    [contact] = query(lpr.admin, "SELECT LastName, GHL_Id__c, VLPR_Grade__c FROM Contact")
    assert (contact["LastName"], contact["GHL_Id__c"], contact["VLPR_Grade__c"]) == ("Raman", "ghl-contact-1", "A")
    assert contacts(lpr, "production") == []
    stored = lpr.admin.get(f"/v1/executions/{execution['id']}").json()
    assert (stored["trigger"], stored["env"]) == ("ghl:Contact.insert", "dev")


def test_an_api_key_with_the_webhook_scope_may_post_to_a_named_environment(lpr: Tenant) -> None:
    hooks = lpr.client(lpr.key("webhook"))
    answer = post(hooks, "/v1/hooks/ghl?env=dev", ghl_signed(lpr.ghl_key, ghl_contact()))
    assert [e["state"] for e in applied(lpr.admin, answer)] == ["applied"]
    assert [c["GHL_Id__c"] for c in ghl_contacts(lpr)] == ["ghl-contact-1"]
    default = post(hooks, "/v1/hooks/ghl", ghl_signed(lpr.ghl_key, ghl_contact(id="ghl-contact-2")))
    assert [e["env"] for e in applied(lpr.admin, default)] == ["production"]
    assert [c["GHL_Id__c"] for c in ghl_contacts(lpr, "production")] == ["ghl-contact-2"]  # production by default


def test_a_ghl_update_updates_the_contact_it_created(lpr: Tenant) -> None:
    path = hook_path(lpr, "ghl")
    applied(lpr.admin, post(lpr.admin, path, ghl_signed(lpr.ghl_key, ghl_contact())))
    update = ghl_contact(type="ContactUpdate", lastName="Raman-Iyer")
    assert [e["state"] for e in applied(lpr.admin, post(lpr.admin, path, ghl_signed(lpr.ghl_key, update)))] == [
        "applied"
    ]
    assert [(c["LastName"], c["GHL_Id__c"]) for c in ghl_contacts(lpr)] == [("Raman-Iyer", "ghl-contact-1")]


def test_an_unsigned_or_forged_ghl_webhook_is_401_and_changes_nothing(lpr: Tenant, globex: Tenant) -> None:
    path = hook_path(lpr, "ghl")
    raw, headers = ghl_signed(lpr.ghl_key, ghl_contact())
    unsigned = problem(lpr.admin.post(path, content=raw, headers={"content-type": "application/json"}), 401)
    assert "X-GHL-Signature" in unsigned["detail"]
    tampered = raw.replace(b"Raman", b"Forged")
    problem(lpr.admin.post(path, content=tampered, headers=headers), 401)
    problem(post(lpr.admin, path, ghl_signed(Ed25519PrivateKey.generate(), ghl_contact())), 401)
    problem(post(lpr.admin, path, (raw, {**headers, "x-ghl-signature": "not-base64!"})), 401)
    problem(post(lpr.admin, path, ghl_signed(globex.ghl_key, ghl_contact())), 401)  # signed with another tenant's key
    assert contacts(lpr) == []


def test_a_stale_or_future_ghl_webhook_is_401(lpr: Tenant) -> None:
    path = hook_path(lpr, "ghl")
    stale = problem(post(lpr.admin, path, ghl_signed(lpr.ghl_key, ghl_contact(timestamp="2020-01-01T00:00:00Z"))), 401)
    assert stale["title"] == "Stale"
    future = problem(post(lpr.admin, path, ghl_signed(lpr.ghl_key, ghl_contact(timestamp="2099-01-01T00:00:00Z"))), 401)
    assert "future" in future["detail"]
    assert contacts(lpr) == []


def test_a_ghl_webhook_for_another_location_is_403(lpr: Tenant) -> None:
    refused = problem(
        post(lpr.admin, hook_path(lpr, "ghl"), ghl_signed(lpr.ghl_key, ghl_contact(locationId="loc-x"))), 403
    )
    assert "loc-x" in refused["detail"] and GHL_LOCATION not in refused["detail"]
    assert contacts(lpr) == []


def test_an_authentic_ghl_event_of_an_unsupported_type_is_422_naming_the_supported_ones(lpr: Tenant) -> None:
    signed = ghl_signed(lpr.ghl_key, ghl_contact(type="InvoiceCreate"))
    refused = problem(post(lpr.admin, hook_path(lpr, "ghl"), signed), 422)
    assert "'InvoiceCreate' is not supported" in refused["detail"] and "ContactCreate" in refused["detail"]
    assert contacts(lpr) == []


def test_a_replayed_webhook_is_a_200_duplicate_and_runs_once(lpr: Tenant) -> None:
    path = hook_path(lpr, "ghl")
    signed = ghl_signed(lpr.ghl_key, ghl_contact())
    first = post(lpr.admin, path, signed)
    duplicate(post(lpr.admin, path, signed))  # while the first waits to be applied
    applied(lpr.admin, first)
    duplicate(post(lpr.admin, path, signed))  # and after
    assert len(contacts(lpr)) == 1
    executions = lpr.admin.get("/v1/executions").json()["executions"]
    assert [e["trigger"] for e in executions if e["trigger"].startswith("ghl:")] == ["ghl:Contact.insert"]


# --- generic and Salesforce CDC: X-Circuit-Signature --------------------------------------------------


def test_a_signed_generic_event_runs_the_trigger(lpr: Tenant) -> None:
    event = generic_event({"LastName": "Generic", "Email": "g@globex.io", "Company_Size__c": 250})
    answer = post(lpr.admin, hook_path(lpr, "generic"), generic_signed(event))
    assert [e["status"] for e in executions_of(lpr.admin, answer)] == ["ok"]
    [contact] = query(lpr.admin, "SELECT LastName, VLPR_Grade__c FROM Contact")
    assert contact["LastName"] == "Generic" and contact["VLPR_Grade__c"] in {"A", "B", "C", "D"}


@pytest.mark.parametrize(
    ("tamper", "words"),
    [
        (lambda raw, headers: (raw, {"content-type": "application/json"}), "without an X-Circuit-Signature"),
        (lambda raw, headers: generic_signed(json.loads(raw), secret="another-secret-0123456789"), "does not match"),
        (lambda raw, headers: (raw.replace(b"Generic", b"Forged!"), headers), "does not match"),
        (lambda raw, headers: generic_signed(json.loads(raw), at=time.time() - 3600), "old"),
        (lambda raw, headers: (raw, {**headers, "x-circuit-signature": "v1=abc"}), "X-Circuit-Signature"),
    ],
    ids=["missing", "wrong-secret", "tampered-body", "stale", "malformed"],
)
def test_an_unauthentic_generic_event_is_401(lpr: Tenant, tamper: Tamper, words: str) -> None:
    raw, headers = generic_signed(generic_event({"LastName": "Generic"}))
    refused = problem(post(lpr.admin, hook_path(lpr, "generic"), tamper(raw, headers)), 401)
    assert words in refused["detail"], refused
    assert contacts(lpr) == []


def test_without_a_configured_secret_no_signature_is_accepted(lpr: Tenant) -> None:
    lpr.configure(generic_hmac_secret=None)
    refused = problem(post(lpr.admin, hook_path(lpr, "generic"), generic_signed(generic_event({"LastName": "X"}))), 401)
    assert "no signing secret is configured" in refused["detail"]
    assert contacts(lpr) == []


def test_a_replayed_generic_event_id_is_a_duplicate(lpr: Tenant) -> None:
    path = hook_path(lpr, "generic")
    applied(lpr.admin, post(lpr.admin, path, generic_signed(generic_event({"LastName": "Once"}, event_id="evt-1"))))
    again = generic_signed(generic_event({"LastName": "Twice"}, event_id="evt-1"))  # freshly signed, same id
    duplicate(post(lpr.admin, path, again))
    assert contacts(lpr) == ["Once"]


def test_a_delivery_claimed_by_the_version_before_the_inbox_is_still_a_duplicate(lpr: Tenant) -> None:
    """Versions before the inbox claimed delivery ids in ``cs_webhook_ids`` (the sender's id, or the
    signed body's hash); a replay of such a delivery after the upgrade must not apply again."""
    webhooks = lpr.server.state.platform.webhooks
    path = hook_path(lpr, "ghl")
    with_id = ghl_contact(id="ghl-old-1")
    without_id = ghl_contact(id="ghl-old-2")
    del without_id["webhookId"]
    signed_without_id = ghl_signed(lpr.ghl_key, without_id)
    long_id = ghl_contact(id="ghl-old-3", webhookId="w" * 300)  # stored by its hash (the column holds 128)
    expired = ghl_contact(id="ghl-old-4")
    elsewhere = generic_event({"LastName": "Elsewhere"}, event_id=with_id["webhookId"])  # ids are per source
    # What the previous version recorded when it accepted these deliveries:
    assert webhooks.remember_webhook_id(lpr.id, "ghl", with_id["webhookId"], 300)
    body_hash = "sha256:" + hashlib.sha256(signed_without_id[0]).hexdigest()
    assert webhooks.remember_webhook_id(lpr.id, "ghl", body_hash, 300)
    assert webhooks.remember_webhook_id(lpr.id, "ghl", long_id["webhookId"], 300)
    assert webhooks.remember_webhook_id(lpr.id, "ghl", expired["webhookId"], -1)  # its replay window ended

    duplicate(post(lpr.admin, path, ghl_signed(lpr.ghl_key, with_id)))
    duplicate(post(lpr.admin, path, signed_without_id))
    duplicate(post(lpr.admin, path, ghl_signed(lpr.ghl_key, long_id)))
    assert [e["state"] for e in applied(lpr.admin, post(lpr.admin, path, ghl_signed(lpr.ghl_key, expired)))] == [
        "applied"
    ]
    accepted = post(lpr.admin, hook_path(lpr, "generic"), generic_signed(elsewhere))
    assert [e["state"] for e in applied(lpr.admin, accepted)] == ["applied"]
    assert sorted(c["GHL_Id__c"] or c["LastName"] for c in ghl_contacts(lpr)) == ["Elsewhere", "ghl-old-4"]


def test_a_webhook_that_keeps_failing_is_retried_then_dead_lettered_and_can_be_retried(lpr: Tenant) -> None:
    path = hook_path(lpr, "generic")
    failing = generic_event({"FirstName": "No last name"}, event_id="evt-retry")
    answer = post(lpr.admin, path, generic_signed(failing))
    [entry] = applied(lpr.admin, answer)  # three attempts with backoff (this module's server settings)
    assert (entry["state"], entry["attempts"]) == ("dead", 3)
    assert "LastName" in entry["last_error"] and entry["execution"]["status"] == "error"
    dead = lpr.admin.get("/v1/inbox", params={"state": "dead"}).json()["entries"]
    assert [e["id"] for e in dead] == [entry["id"]]
    assert lpr.admin.get("/v1/inbox", params={"state": "applied"}).json()["entries"] == []
    duplicate(post(lpr.admin, path, generic_signed(failing)))  # the sender's retry does not run it again
    problem(lpr.client(lpr.key("read")).post(f"/v1/inbox/{entry['id']}/retry"), 403)
    retried = lpr.admin.post(f"/v1/inbox/{entry['id']}/retry")
    assert retried.status_code == 200 and retried.json()["state"] == "pending", retried.text
    problem(lpr.admin.post(f"/v1/inbox/{entry['id']}/retry"), 409)  # pending: nothing to retry
    deadline = time.monotonic() + 20
    while lpr.admin.get(f"/v1/inbox/{entry['id']}").json()["state"] == "pending":
        assert time.monotonic() < deadline
        time.sleep(0.02)
    assert lpr.admin.get(f"/v1/inbox/{entry['id']}").json()["attempts"] == 3  # a full round again
    assert contacts(lpr) == []


def test_one_failing_delivery_in_a_batch_fails_alone(lpr: Tenant) -> None:
    lpr.configure(coalesce_window_ms=300)
    path = hook_path(lpr, "generic")
    good = post(lpr.admin, path, generic_signed(generic_event({"LastName": "Good"})))
    bad = post(lpr.admin, path, generic_signed(generic_event({"FirstName": "No last name"})))
    also = post(lpr.admin, path, generic_signed(generic_event({"LastName": "Also"})))
    assert [e["state"] for a in (good, bad, also) for e in applied(lpr.admin, a)] == ["applied", "dead", "applied"]
    assert contacts(lpr) == ["Also", "Good"]


def test_a_failing_entry_waiting_out_a_long_backoff_does_not_hold_back_new_deliveries(lpr: Tenant) -> None:
    inbox = lpr.server.state.inbox
    kept = inbox.retry
    inbox.retry = RetryPolicy(max_attempts=3, backoff_s=120)
    try:
        path = hook_path(lpr, "generic")
        failing = post(lpr.admin, path, generic_signed(generic_event({"FirstName": "No last name"})))
        [entry_id] = failing.json()["inbox_ids"]
        deadline = time.monotonic() + 20
        while lpr.admin.get(f"/v1/inbox/{entry_id}").json()["attempts"] == 0:
            assert time.monotonic() < deadline
            time.sleep(0.05)
        later = post(lpr.admin, path, generic_signed(generic_event({"LastName": "NotHeldBack"})))
        assert [e["state"] for e in applied(lpr.admin, later, timeout=15)] == ["applied"]  # not 120 s later
        assert lpr.admin.get(f"/v1/inbox/{entry_id}").json()["state"] == "pending"  # still waiting its retry
    finally:
        inbox.retry = kept


def test_another_tenants_inbox_entries_are_not_found(lpr: Tenant, globex: Tenant) -> None:
    answer = post(lpr.admin, hook_path(lpr, "generic"), generic_signed(generic_event({"LastName": "Mine"})))
    [entry] = applied(lpr.admin, answer)
    problem(globex.admin.get(f"/v1/inbox/{entry['id']}"), 404)
    problem(globex.admin.post(f"/v1/inbox/{entry['id']}/retry"), 404)
    assert globex.admin.get("/v1/inbox").json()["entries"] == []
    problem(lpr.admin.get(f"/v1/inbox/{2**64}"), 422)  # not a database integer: refused, not a server error


@pytest.mark.parametrize(
    ("body", "content_type", "status"),
    [
        (b"{not json", "application/json", 400),
        (b'{"id": "evt"}', "application/json", 400),
        (b"LastName=X", "application/x-www-form-urlencoded", 415),
    ],
    ids=["not-json", "not-an-event", "not-json-media-type"],
)
def test_an_authentic_but_malformed_body_is_refused(lpr: Tenant, body: bytes, content_type: str, status: int) -> None:
    problem(post(lpr.admin, hook_path(lpr, "generic"), circuit_signed(body, content_type=content_type)), status)
    assert contacts(lpr) == []


def test_a_salesforce_cdc_create_is_keyed_by_the_salesforce_id(lpr: Tenant) -> None:
    answer = post(lpr.admin, hook_path(lpr, "salesforce-cdc"), generic_signed(json.loads(SFDC_CREATE.read_text())))
    assert [e["status"] for e in executions_of(lpr.admin, answer)] == ["ok"]
    rows = query(lpr.admin, "SELECT LastName, Salesforce_Id__c FROM Contact")
    assert [(r["LastName"], r["Salesforce_Id__c"]) for r in rows] == [("Raman", "003Qy00000VLp01IAB")]


# --- URLs, sources, keys -------------------------------------------------------------------------------


def test_an_unknown_or_rotated_token_is_404(lpr: Tenant) -> None:
    path = hook_path(lpr, "ghl")
    problem(post(lpr.admin, "/v1/hooks/ghl/" + "x" * 43, ghl_signed(lpr.ghl_key, ghl_contact())), 404)
    SHOWN[lpr.id, "dev"] = lpr.admin.post("/v1/environments/dev/webhooks/rotate").json()["urls"]
    gone = problem(post(lpr.admin, path, ghl_signed(lpr.ghl_key, ghl_contact())), 404)
    assert gone["title"] == "Unknown webhook URL"
    assert post(lpr.admin, hook_path(lpr, "ghl"), ghl_signed(lpr.ghl_key, ghl_contact())).status_code == 202


def test_an_unknown_source_is_404_naming_the_known_ones(lpr: Tenant) -> None:
    token = hook_path(lpr, "ghl").rsplit("/", 1)[1]
    for path in (f"/v1/hooks/hubspot/{token}", "/v1/hooks/hubspot"):
        refused = problem(post(lpr.admin, path, generic_signed(generic_event({"LastName": "X"}))), 404)
        assert {"ghl", "generic", "salesforce-cdc"} <= set(refused["detail"].removeprefix("sources are ").split(", "))


def test_another_tenants_token_url_does_not_accept_this_tenants_signature(lpr: Tenant, globex: Tenant) -> None:
    acme_path = hook_path(lpr, "ghl")
    problem(post(globex.admin, acme_path, ghl_signed(globex.ghl_key, ghl_contact(id="intruder"))), 401)
    assert contacts(lpr) == [] and contacts(globex) == []


def test_the_token_url_is_rate_limited_per_tenant(lpr: Tenant) -> None:
    path = hook_path(lpr, "generic")  # API calls count too: ask before the limit drops
    lpr.configure(rate_limit_per_minute=2)
    statuses = [post(lpr.client(None), path, generic_signed(generic_event({"LastName": f"R{n}"}))) for n in range(3)]
    assert [s.status_code for s in statuses] == [202, 202, 429]
    assert int(statuses[2].headers["retry-after"]) >= 1


def test_a_burst_in_the_coalescing_window_runs_as_one_execution(lpr: Tenant) -> None:
    lpr.configure(coalesce_window_ms=300)
    path = hook_path(lpr, "generic")
    answers = []
    for n in range(3):
        answers.append(
            post(lpr.admin, path, generic_signed(generic_event({"LastName": f"Burst{n}"}, event_id=f"b-{n}")))
        )
        assert answers[-1].status_code == 202 and answers[-1].json()["accepted"] == 1, answers[-1].text
    entries = [e for a in answers for e in applied(lpr.admin, a)]
    assert {e["state"] for e in entries} == {"applied"}
    assert len({e["execution_id"] for e in entries}) == 1  # one trigger execution for the batch
    executions = lpr.admin.get("/v1/executions").json()["executions"]
    assert [e["status"] for e in executions if e["trigger"].startswith("generic:")] == ["ok"]
    assert contacts(lpr) == ["Burst0", "Burst1", "Burst2"]
    duplicate(post(lpr.admin, path, generic_signed(generic_event({"LastName": "Burst0"}, event_id="b-0"))))


def test_posting_with_a_key_needs_the_webhook_scope(lpr: Tenant) -> None:
    signed = ghl_signed(lpr.ghl_key, ghl_contact())
    problem(post(lpr.client(None), "/v1/hooks/ghl?env=dev", signed), 401)
    problem(post(lpr.client("cs_forged"), "/v1/hooks/ghl?env=dev", signed), 401)
    problem(post(lpr.client(lpr.key(OTHER_SCOPE["webhook"])), "/v1/hooks/ghl?env=dev", signed), 403)
    assert "query.env" in problem(post(lpr.admin, "/v1/hooks/ghl?env=qa", signed), 422)["detail"]
    assert contacts(lpr) == []


def test_a_webhook_sent_twice_inside_the_coalescing_window_is_applied_once(lpr: Tenant) -> None:
    lpr.configure(coalesce_window_ms=300)
    path = hook_path(lpr, "generic")
    signed = generic_signed(generic_event({"LastName": "Twice"}, event_id="resent"))
    first = post(lpr.admin, path, signed)
    duplicate(post(lpr.admin, path, signed))
    applied(lpr.admin, first)
    assert contacts(lpr) == ["Twice"]
