"""The server end to end, over real HTTP on loopback: deploy, webhooks, records, rollback, isolation."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import re
import time
import uuid
import zipfile
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx

from tests.server.conftest import (
    GENERIC_SECRET,
    GHL_LOCATION,
    LiveServer,
    Tenant,
    applied,
    deployed,
    executions_of,
    gate_verdict,
)

HOT_LEAD_FIELDS = {
    "cf-size": "Company_Size__c",
    "cf-visits": "Website_Visits__c",
    "cf-opens": "Emails_Opened__c",
    "cf-called": "Called_Business__c",
}


def deploy(client: httpx.Client, bundle: Path, env: str = "production") -> list[dict[str, Any]]:
    uploaded = client.post("/v1/bundles", content=bundle.read_bytes(), headers={"content-type": "application/zip"})
    assert uploaded.status_code in (200, 201), uploaded.text
    info = uploaded.json()
    answer = client.post(
        f"/v1/environments/{env}/deployments", json={"circuit": info["name"], "version": info["version"]}
    )
    return deployed(client, answer)  # staging, production: after the deploy gate's job


def ghl_contact(event_type: str = "ContactCreate", **fields: Any) -> dict[str, Any]:
    body = {
        "type": event_type,
        "locationId": GHL_LOCATION,
        "id": "ghl-contact-1",
        "webhookId": str(uuid.uuid4()),
        "timestamp": datetime.now(UTC).isoformat().replace("+00:00", "Z"),
        "firstName": "Priya",
        "lastName": "Raman",
        "email": "priya@acme-robotics.com",
        "source": "Referral",
        "postalCode": "94105",
        "customFields": [
            {"id": "cf-size", "value": 450},
            {"id": "cf-visits", "value": 14},
            {"id": "cf-opens", "value": 6},
            {"id": "cf-called", "value": True},
        ],
    }
    body.update(fields)
    return body


def post_ghl(
    client: httpx.Client, tenant: Tenant, payload: dict[str, Any], url: str = "/v1/hooks/ghl"
) -> httpx.Response:
    raw = json.dumps(payload).encode()
    signature = base64.b64encode(tenant.ghl_key.sign(raw)).decode()
    headers = {"content-type": "application/json", "x-ghl-signature": signature}
    return client.post(url, content=raw, headers=headers)


def configure(live: LiveServer, tenant: Tenant, **settings: Any) -> None:
    live.state.platform.tenants.update_settings(tenant.id, {"ghl_custom_fields": HOT_LEAD_FIELDS, **settings})


def variant(
    bundle: Path,
    out: Path,
    version: str,
    extra_toml: str = "",
    members: tuple[str, ...] = ("module.wasm", "tests.wasm"),
) -> Path:
    """A copy of ``bundle`` under another version, with TOML appended to its manifest."""
    with zipfile.ZipFile(bundle) as original, zipfile.ZipFile(out, "w") as copy:
        manifest = original.read("circuit.toml").decode().replace('version = "1.0.0"', f'version = "{version}"')
        copy.writestr("circuit.toml", manifest + extra_toml)
        for member in members:
            copy.writestr(member, original.read(member))
    return out


def test_ghl_contact_create_is_scored_and_a_hot_lead_gets_a_task(
    live: LiveServer, vlpr_bundles: dict[str, Path]
) -> None:
    tenant = live.tenant("acme")
    configure(live, tenant)
    with tenant.client(live) as client:
        assert [c["version"] for c in deploy(client, vlpr_bundles["1.0.0"])] == ["1.0.0"]
        [execution] = executions_of(client, post_ghl(client, tenant, ghl_contact()))
        assert execution["status"] == "ok", execution
        rows = client.get(
            "/v1/query", params={"soql": "SELECT LastName, VLPR_Score__c, VLPR_Grade__c, GHL_Id__c FROM Contact"}
        )
        [contact] = rows.json()["records"]
        assert (contact["LastName"], contact["VLPR_Grade__c"], contact["GHL_Id__c"]) == ("Raman", "A", "ghl-contact-1")
        assert contact["VLPR_Score__c"] >= 70
        tasks = client.get("/v1/query", params={"soql": "SELECT Subject, WhoId FROM Task"}).json()["records"]
        assert [t["WhoId"] for t in tasks] == [contact["Id"]]
        assert tasks[0]["Subject"].startswith("CRITICAL: call Priya Raman")
        stored = client.get(f"/v1/executions/{execution['id']}").json()
        assert stored["status"] == "ok" and stored["version"] == "virtual_lpr@1.0.0"
        for event in (
            "EXECUTION_START",
            "DML|Rows:1",
            "CODE_UNIT_STARTED",
            "QUERY|Rows:0",
            "LIMIT_USAGE",
            "EXECUTION_END",
        ):
            assert event in stored["debug_log"], event


def test_webhook_url_with_token_works_without_a_key_and_rotation_retires_it(
    live: LiveServer, vlpr_bundles: dict[str, Path]
) -> None:
    tenant = live.tenant("acme")
    configure(live, tenant)
    with tenant.client(live) as client:
        deploy(client, vlpr_bundles["1.0.0"])
        url = client.get("/v1/environments/production/webhooks").json()["urls"]["ghl"]
        path = httpx.URL(url).path
        with httpx.Client(base_url=live.url, trust_env=False) as anonymous:
            applied(client, post_ghl(anonymous, tenant, ghl_contact(), path))
            rotated = client.post("/v1/environments/production/webhooks/rotate").json()["urls"]["ghl"]
            assert rotated != url
            gone = post_ghl(anonymous, tenant, ghl_contact(), path)
            assert gone.status_code == 404
            assert gone.headers["content-type"] == "application/problem+json"


def test_bad_signature_stale_timestamp_and_replay_are_refused(live: LiveServer, vlpr_bundles: dict[str, Path]) -> None:
    tenant = live.tenant("acme")
    configure(live, tenant)
    with tenant.client(live) as client:
        deploy(client, vlpr_bundles["1.0.0"])
        payload = ghl_contact()
        raw = json.dumps(payload).encode()
        forged = base64.b64encode(tenant.ghl_key.sign(raw + b" ")).decode()
        bad = client.post(
            "/v1/hooks/ghl", content=raw, headers={"content-type": "application/json", "x-ghl-signature": forged}
        )
        assert bad.status_code == 401
        unsigned = client.post("/v1/hooks/ghl", content=raw, headers={"content-type": "application/json"})
        assert unsigned.status_code == 401
        stale = post_ghl(client, tenant, ghl_contact(timestamp="2020-01-01T00:00:00Z"))
        assert stale.status_code == 401 and "Stale" in stale.json()["title"]
        applied(client, post_ghl(client, tenant, payload))
        replay = post_ghl(client, tenant, payload)
        assert replay.status_code == 200 and replay.json() == {"duplicate": True}
        other_location = post_ghl(client, tenant, ghl_contact(locationId="loc-someone-else"))
        assert other_location.status_code == 403
        count = client.get("/v1/query", params={"soql": "SELECT COUNT() FROM Contact"}).json()["total_size"]
        assert count == 1


def test_generic_webhook_with_hmac_and_update_supplies_old_values(
    live: LiveServer, vlpr_bundles: dict[str, Path]
) -> None:
    tenant = live.tenant("acme")
    with tenant.client(live) as client:
        deploy(client, vlpr_bundles["1.0.0"])
        body = {
            "id": "evt-1",
            "object": "Contact",
            "operation": "insert",
            "records": [{"LastName": "Generic", "Email": "g@globex.io", "Company_Size__c": 250}],
            "occurred_at": datetime.now(UTC).isoformat(),
        }
        raw = json.dumps(body).encode()
        t = str(int(time.time()))
        mac = hmac.new(GENERIC_SECRET.encode(), f"{t}.".encode() + raw, hashlib.sha256).hexdigest()
        headers = {"content-type": "application/json", "x-circuit-signature": f"t={t},v1={mac}"}
        answer = client.post("/v1/hooks/generic", content=raw, headers=headers)
        assert executions_of(client, answer)[0]["status"] == "ok"
        wrong = client.post(
            "/v1/hooks/generic", content=raw, headers={**headers, "x-circuit-signature": f"t={t},v1={'0' * 64}"}
        )
        assert wrong.status_code == 401
        [contact] = client.get("/v1/query", params={"soql": "SELECT VLPR_Grade__c FROM Contact"}).json()["records"]
        assert contact["VLPR_Grade__c"] in {"A", "B", "C", "D"}


def test_deploy_update_rollback_and_promote(live: LiveServer, vlpr_bundles: dict[str, Path]) -> None:
    tenant = live.tenant("acme")
    configure(live, tenant)
    with tenant.client(live) as client:
        deploy(client, vlpr_bundles["1.0.0"])
        assert [c["version"] for c in deploy(client, vlpr_bundles["1.1.0"])] == ["1.1.0"]
        assert executions_of(client, post_ghl(client, tenant, ghl_contact()))[0]["status"] == "ok"
        started = time.monotonic()
        rolled = client.post("/v1/environments/production/rollback", json={"circuit": "virtual_lpr"})
        assert rolled.status_code == 200
        assert [c["version"] for c in rolled.json()] == ["1.0.0"]
        answer = post_ghl(client, tenant, ghl_contact(id="ghl-contact-2"))
        assert time.monotonic() - started < 1.0 + answer.elapsed.total_seconds()
        applied(client, answer)
        latest = client.get("/v1/executions", params={"limit": 1}).json()["executions"][0]
        assert latest["version"] == "virtual_lpr@1.0.0"
        assert client.get("/v1/environments/staging/circuits").json() == []
        deploy(client, vlpr_bundles["1.1.0"], env="staging")
        promoted = deployed(client, client.post("/v1/promotions", json={"from": "staging", "to": "production"}))
        assert [c["version"] for c in promoted] == ["1.1.0"]
        actions = [(a["action"], a["env"], a["to_version"]) for a in client.get("/v1/audit").json()]
        assert ("rollback", "production", "1.0.0") in actions
        assert ("promote", "production", "1.1.0") in actions
        assert all(a["actor"].startswith("key:") for a in client.get("/v1/audit").json() if a["action"] != "upload")


def test_bad_bundles_are_rejected_precisely(live: LiveServer, tmp_path: Path) -> None:
    tenant = live.tenant("acme")
    with tenant.client(live) as client:
        junk = client.post("/v1/bundles", content=b"not a zip", headers={"content-type": "application/zip"})
        assert junk.status_code == 422
        assert junk.headers["content-type"] == "application/problem+json"
        assert "zip" in junk.json()["detail"]
        missing = client.post("/v1/environments/production/deployments", json={"circuit": "nope", "version": "9.9.9"})
        assert missing.status_code == 404


def test_one_tenant_can_never_see_or_touch_another(live: LiveServer, vlpr_bundles: dict[str, Path]) -> None:
    acme, globex = live.tenant("acme"), live.tenant("globex")
    configure(live, acme)
    with acme.client(live) as a, globex.client(live) as g:
        deploy(a, vlpr_bundles["1.0.0"])
        execution_id = executions_of(a, post_ghl(a, acme, ghl_contact()))[0]["id"]
        assert g.get(f"/v1/executions/{execution_id}").status_code == 404
        assert g.get("/v1/executions").json()["executions"] == []
        assert g.get("/v1/query", params={"soql": "SELECT Id FROM Contact"}).json()["records"] == []
        assert g.get("/v1/environments/production/circuits").json() == []
        assert g.post("/v1/environments/production/rollback", json={"circuit": "virtual_lpr"}).status_code == 404
        assert [c["version"] for c in a.get("/v1/environments/production/circuits").json()] == ["1.0.0"]
        # globex signing with its own key, but posting to acme's URL: refused.
        acme_url = httpx.URL(a.get("/v1/environments/production/webhooks").json()["urls"]["ghl"]).path
        assert post_ghl(g, globex, ghl_contact(id="x"), acme_url).status_code == 401


def test_keys_scopes_and_problem_details(live: LiveServer) -> None:
    tenant = live.tenant("acme")
    with tenant.client(live) as admin, httpx.Client(base_url=live.url, trust_env=False) as anonymous:
        missing = anonymous.get("/v1/executions")
        assert missing.status_code == 401
        assert missing.headers["content-type"] == "application/problem+json"
        assert anonymous.get("/v1/executions", headers={"authorization": "Bearer cs_nope_nope"}).status_code == 401
        created = admin.post("/v1/keys", json={"scopes": ["read"], "label": "dashboards"})
        assert created.status_code == 201
        read_key = created.json()["key"]
        with tenant.client(live, read_key) as reader:
            assert reader.get("/v1/executions").status_code == 200
            forbidden = reader.post(
                "/v1/environments/production/deployments", json={"circuit": "x", "version": "1.0.0"}
            )
            assert forbidden.status_code == 403
            assert admin.delete(f"/v1/keys/{created.json()['id']}").status_code == 204
            assert reader.get("/v1/executions").status_code == 401
        assert admin.get("/healthz").json() == {"status": "ok"}


def test_rate_limit_answers_429_with_retry_after(live: LiveServer) -> None:
    tenant = live.tenant("acme")
    live.state.platform.tenants.update_settings(tenant.id, {"rate_limit_per_minute": 5})
    with tenant.client(live) as client:
        statuses = [client.get("/v1/executions").status_code for _ in range(6)]
        assert statuses == [200] * 5 + [429]
        limited = client.get("/v1/executions")
        assert int(limited.headers["retry-after"]) >= 1


def test_oversized_requests_are_refused_before_they_are_read(live: LiveServer) -> None:
    tenant = live.tenant("acme")
    with tenant.client(live) as client:
        big = client.post(
            "/v1/records/Contact", content=b"x" * (300 * 1024), headers={"content-type": "application/json"}
        )
        assert big.status_code == 413
        assert big.json()["title"] == "Request too large"


def test_records_api_fires_triggers_and_reports_dml_errors(live: LiveServer, vlpr_bundles: dict[str, Path]) -> None:
    tenant = live.tenant("acme")
    with tenant.client(live) as client:
        deploy(client, vlpr_bundles["1.0.0"])
        written = client.post("/v1/records/Contact", json={"records": [{"LastName": "Api", "Company_Size__c": 300}]})
        assert written.status_code == 200, written.text
        assert written.json()["execution"]["status"] == "ok"
        [contact] = client.get("/v1/query", params={"soql": "SELECT VLPR_Grade__c FROM Contact"}).json()["records"]
        assert contact["VLPR_Grade__c"] is not None  # the trigger ran
        bad = client.post("/v1/records/Contact", json={"records": [{"FirstName": "No last name"}]})
        assert bad.json()["execution"]["status"] == "error"
        assert "LastName" in bad.json()["execution"]["error"]["message"]
        soql = client.get("/v1/query", params={"soql": "SELECT Nope FROM Contact"})
        assert soql.status_code == 400 and "Nope" in soql.json()["detail"]


def signed_generic(records: list[dict[str, Any]], event_id: str) -> tuple[bytes, dict[str, str]]:
    body = {
        "id": event_id,
        "object": "Contact",
        "operation": "insert",
        "records": records,
        "occurred_at": datetime.now(UTC).isoformat(),
    }
    raw = json.dumps(body).encode()
    t = str(int(time.time()))
    mac = hmac.new(GENERIC_SECRET.encode(), f"{t}.".encode() + raw, hashlib.sha256).hexdigest()
    return raw, {"content-type": "application/json", "x-circuit-signature": f"t={t},v1={mac}"}


def test_a_burst_is_coalesced_into_one_trigger_execution(live: LiveServer, vlpr_bundles: dict[str, Path]) -> None:
    tenant = live.tenant("acme")
    live.state.platform.tenants.update_settings(tenant.id, {"coalesce_window_ms": 400})
    with tenant.client(live) as client:
        deploy(client, vlpr_bundles["1.0.0"])
        answers = []
        for n in range(3):
            raw, headers = signed_generic([{"LastName": f"Burst{n}"}], f"burst-{n}")
            answers.append(client.post("/v1/hooks/generic", content=raw, headers=headers))
            assert answers[-1].json()["accepted"] == 1, answers[-1].text
        assert len({e["execution_id"] for a in answers for e in applied(client, a)}) == 1
        executions = client.get("/v1/executions").json()["executions"]
        assert len(executions) == 1 and executions[0]["status"] == "ok"
        count = client.get("/v1/query", params={"soql": "SELECT COUNT() FROM Contact"}).json()["total_size"]
        assert count == 3
        raw, headers = signed_generic([{"LastName": "Burst0"}], "burst-0")
        assert client.post("/v1/hooks/generic", content=raw, headers=headers).json() == {"duplicate": True}


def test_the_bundles_limits_govern_its_executions(
    live: LiveServer, vlpr_bundles: dict[str, Path], tmp_path: Path
) -> None:
    tenant = live.tenant("acme")
    strict = variant(vlpr_bundles["1.0.0"], tmp_path / "strict.circuit", "2.0.0", "\n[limits]\nqueries = 0\n")
    with tenant.client(live) as client:
        deploy(client, strict, env="dev")  # its own tests could not pass under queries = 0: not deployable higher up
        written = client.post("/v1/records/Contact?env=dev", json={"records": [{"LastName": "Limited"}]}).json()
        assert written["execution"]["status"] == "limit_exceeded"
        assert written["execution"]["error"]["resource"] == "queries"
        count = client.get("/v1/query", params={"soql": "SELECT COUNT() FROM Contact", "env": "dev"}).json()
        assert count["total_size"] == 0
        live.state.platform.tenants.update_settings(tenant.id, {"max_limits": {"queries": 5}})
        greedy = variant(vlpr_bundles["1.0.0"], tmp_path / "greedy.circuit", "3.0.0", "\n[limits]\nqueries = 50\n")
        refused = client.post("/v1/bundles", content=greedy.read_bytes(), headers={"content-type": "application/zip"})
        assert refused.status_code == 422  # the upload itself is checked against the tenant's maximum
        assert "above the tenant's maximum of 5" in refused.json()["detail"]


def test_a_circuit_using_a_named_credential_deploys_only_where_it_is_configured(
    live: LiveServer, vlpr_bundles: dict[str, Path], tmp_path: Path
) -> None:
    tenant = live.tenant("acme")
    credentials = '\n[credentials]\nnames = ["census"]\n'
    bundle = variant(vlpr_bundles["1.0.0"], tmp_path / "credentialed.circuit", "4.0.0", credentials)
    with tenant.client(live) as client:
        uploaded = client.post("/v1/bundles", content=bundle.read_bytes(), headers={"content-type": "application/zip"})
        assert uploaded.status_code == 201
        body = {"circuit": "virtual_lpr", "version": "4.0.0"}
        refused = gate_verdict(client, client.post("/v1/environments/production/deployments", json=body))
        assert refused["state"] == "refused" and "named credential(s) census" in refused["detail"]
        census = {"url": "https://census.example.com/v1", "headers": {"authorization": "Bearer x"}}
        live.state.platform.tenants.update_settings(tenant.id, {"named_credentials": {"census": census}})
        passed = gate_verdict(client, client.post("/v1/environments/production/deployments", json=body))
        assert passed["state"] == "passed"
        stored = live.state.platform.tenants.get_settings(tenant.id).named_credentials["census"]
        assert stored.secret_headers() == {"authorization": "Bearer x"}  # kept, not masked, for the host to use


def post_signed(client: httpx.Client, path: str, payload: dict[str, Any]) -> httpx.Response:
    raw = json.dumps(payload).encode()
    t = str(int(time.time()))
    mac = hmac.new(GENERIC_SECRET.encode(), f"{t}.".encode() + raw, hashlib.sha256).hexdigest()
    return client.post(
        path, content=raw, headers={"content-type": "application/json", "x-circuit-signature": f"t={t},v1={mac}"}
    )


def test_salesforce_cdc_create_update_delete(live: LiveServer, vlpr_bundles: dict[str, Path]) -> None:
    payloads = Path(__file__).resolve().parents[1] / "webhooks" / "payloads"
    created = json.loads((payloads / "sfdc_contact_create.json").read_text())
    tenant = live.tenant("acme")
    with tenant.client(live) as client:
        deploy(client, vlpr_bundles["1.0.0"])
        answer = post_signed(client, "/v1/hooks/salesforce-cdc", created)
        assert executions_of(client, answer)[0]["status"] == "ok"
        soql = "SELECT LastName, Title, VLPR_Grade__c, Salesforce_Id__c, OwnerId FROM Contact"
        [contact] = client.get("/v1/query", params={"soql": soql}).json()["records"]
        assert contact["Salesforce_Id__c"] == "003Qy00000VLp01IAB"
        assert contact["VLPR_Grade__c"] == "A"
        assert contact["OwnerId"] is None  # a Salesforce user this store does not know is dropped, not failed

        header = created["payload"]["ChangeEventHeader"]
        update = {
            "ChangeEventHeader": {
                **header,
                "changeType": "UPDATE",
                "transactionKey": "tx-2",
                "changedFields": ["Title"],
            },
            "Title": "CEO",
        }
        assert executions_of(client, post_signed(client, "/v1/hooks/salesforce-cdc", update))[0]["status"] == "ok"
        [contact] = client.get("/v1/query", params={"soql": soql}).json()["records"]
        assert (contact["LastName"], contact["Title"]) == ("Raman", "CEO")  # an update changes only what it carries

        delete = {"ChangeEventHeader": {**header, "changeType": "DELETE", "transactionKey": "tx-3"}}
        assert executions_of(client, post_signed(client, "/v1/hooks/salesforce-cdc", delete))[0]["status"] == "ok"
        assert client.get("/v1/query", params={"soql": "SELECT COUNT() FROM Contact"}).json()["total_size"] == 0
        binned = client.get("/v1/query", params={"soql": "SELECT LastName FROM Contact WHERE IsDeleted = true"})
        assert [r["LastName"] for r in binned.json()["records"]] == ["Raman"]


def test_staging_and_production_refuse_untested_or_failing_code(
    live: LiveServer, vlpr_bundles: dict[str, Path], tmp_path: Path
) -> None:
    tenant = live.tenant("acme")
    untested = variant(vlpr_bundles["1.0.0"], tmp_path / "untested.circuit", "5.0.0", members=("module.wasm",))
    with tenant.client(live) as client:
        zipped = {"content-type": "application/zip"}
        assert client.post("/v1/bundles", content=untested.read_bytes(), headers=zipped).status_code == 201
        body = {"circuit": "virtual_lpr", "version": "5.0.0"}
        assert client.post("/v1/environments/dev/deployments", json=body).status_code == 200  # dev is not gated
        refused = gate_verdict(client, client.post("/v1/environments/production/deployments", json=body))
        assert refused["state"] == "refused" and "has no tests" in refused["detail"]
        promoted = gate_verdict(client, client.post("/v1/promotions", json={"from": "dev", "to": "staging"}))
        assert promoted["state"] == "refused" and "has no tests" in promoted["detail"]
        assert promoted["kind"] == "promotion" and promoted["circuits"] == {"virtual_lpr": "5.0.0"}
        assert client.get("/v1/environments/staging/circuits").json() == []

        live.state.platform.tenants.update_settings(tenant.id, {"coverage_threshold": 100})
        tested = {"circuit": "virtual_lpr", "version": "1.0.0"}
        assert client.post("/v1/bundles", content=vlpr_bundles["1.0.0"].read_bytes(), headers=zipped).status_code == 201
        refused = gate_verdict(client, client.post("/v1/environments/production/deployments", json=tested))
        assert refused["state"] == "refused"
        assert re.search(r"tests cover \d+\.\d% of its code, under the required 100%", refused["detail"])
        live.state.platform.tenants.update_settings(tenant.id, {"coverage_threshold": 75})
        ok = gate_verdict(client, client.post("/v1/environments/production/deployments", json=tested))
        assert ok["state"] == "passed", ok


def test_the_gate_tests_against_the_target_environments_schema(live: LiveServer, vlpr_bundles: dict[str, Path]) -> None:
    from circuit_host.circuitdb import FieldDef, FieldType

    tenant = live.tenant("acme")
    # Production's Tasks have grown a required custom field the circuit does not fill in.
    live.state.store(tenant.id, "production").add_field("Task", FieldDef("Queue__c", FieldType.TEXT, required=True))
    with tenant.client(live) as client:
        zipped = {"content-type": "application/zip"}
        assert client.post("/v1/bundles", content=vlpr_bundles["1.0.0"].read_bytes(), headers=zipped).status_code == 201
        body = {"circuit": "virtual_lpr", "version": "1.0.0"}
        refused = gate_verdict(client, client.post("/v1/environments/production/deployments", json=body))
        assert refused["state"] == "refused"
        assert "tests failed (coverage" in refused["detail"] and "Queue__c" in refused["detail"]
        staging = gate_verdict(client, client.post("/v1/environments/staging/deployments", json=body))
        assert staging["state"] == "passed"  # staging lacks it


def test_every_gate_verdict_is_kept_with_the_audit_trail(live: LiveServer, vlpr_bundles: dict[str, Path]) -> None:
    tenant = live.tenant("acme")
    with tenant.client(live) as client:
        live.state.platform.tenants.update_settings(tenant.id, {"coverage_threshold": 100})
        zipped = {"content-type": "application/zip"}
        assert client.post("/v1/bundles", content=vlpr_bundles["1.0.0"].read_bytes(), headers=zipped).status_code == 201
        body = {"circuit": "virtual_lpr", "version": "1.0.0"}
        refused = gate_verdict(client, client.post("/v1/environments/staging/deployments", json=body))
        assert refused["state"] == "refused"
        live.state.platform.tenants.update_settings(tenant.id, {"coverage_threshold": 75})
        passed = gate_verdict(client, client.post("/v1/environments/staging/deployments", json=body))
        assert passed["state"] == "passed"
        promoted = gate_verdict(client, client.post("/v1/promotions", json={"from": "staging", "to": "production"}))
        assert promoted["state"] == "passed", promoted
        runs = client.get("/v1/gate-runs").json()
        assert [(r["env"], r["passed"]) for r in runs] == [("production", True), ("staging", True), ("staging", False)]
        assert "under the required 100%" in runs[2]["detail"]
        assert runs[0]["coverage"] >= 75 and runs[0]["detail"].startswith("10 tests passed")
        audit = {(a["action"], a["env"]): a for a in client.get("/v1/audit").json()}
        assert audit[("deploy", "staging")]["gate"]["passed"] is True
        assert audit[("promote", "production")]["gate"]["coverage"] == runs[0]["coverage"]
