"""/v1/credentials: an admin sets, lists and deletes named credentials; header values are write-only,
a credential an active circuit declares cannot be deleted, and an execution already running finishes
on the credential and networks it started with while the next one uses the new ones."""

from __future__ import annotations

import threading
import zipfile
from http.server import BaseHTTPRequestHandler
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.conftest import LoopbackServer
from tests.server.routers.conftest import OTHER_SCOPE, Tenant, deploy, problem
from tests.server.test_end_to_end import variant

TOKEN = "Bearer census-token-0123456789"
CENSUS = '\n[credentials]\nnames = ["census"]\n'


def put(tenant: Tenant, name: str, url: str, headers: dict[str, str] | None = None) -> Any:
    return tenant.admin.put(f"/v1/credentials/{name}", json={"url": url, "headers": headers or {}})


def listed(tenant: Tenant) -> list[dict[str, Any]]:
    answer = tenant.admin.get("/v1/credentials")
    assert answer.status_code == 200, answer.text
    body: list[dict[str, Any]] = answer.json()
    return body


def test_a_credential_is_listed_with_header_names_and_fingerprints_never_values(acme: Tenant) -> None:
    created = put(acme, "census", "https://svc:hunter2@census.example.com/v1", {"Authorization": TOKEN, "X-Team": "t1"})
    assert created.status_code == 200, created.text
    assert TOKEN not in created.text and "hunter2" not in created.text
    [entry] = listed(acme)
    assert entry == created.json()
    assert entry == {
        "name": "census",
        "url": "https://svc:****@census.example.com/v1",
        "headers": {
            "Authorization": {"set": True, "fingerprint": acme.server.state.platform.tenants.fingerprint(TOKEN)},
            "X-Team": {"set": True, "fingerprint": acme.server.state.platform.tenants.fingerprint("t1")},
        },
        "used_by": [],
    }
    whole = acme.admin.get("/v1/settings").text + acme.admin.get("/v1/credentials").text
    assert TOKEN not in whole and "hunter2" not in whole
    stored = acme.server.state.platform.tenants.get_settings(acme.id).named_credentials["census"]
    assert stored.secret_headers() == {"Authorization": TOKEN, "X-Team": "t1"}  # kept for the host to send


def test_put_replaces_the_whole_credential_and_each_change_is_audited_by_name(acme: Tenant) -> None:
    put(acme, "census", "https://census.example.com/v1", {"Authorization": TOKEN, "X-Old": "1"})
    replaced = put(acme, "census", "https://census.example.com/v2", {"Authorization": "Bearer other-0123"}).json()
    assert replaced["url"] == "https://census.example.com/v2"
    assert set(replaced["headers"]) == {"Authorization"}
    assert replaced["headers"]["Authorization"]["fingerprint"] == acme.server.state.platform.tenants.fingerprint(
        "Bearer other-0123"
    )
    assert acme.admin.delete("/v1/credentials/census").status_code == 204
    assert listed(acme) == []
    trail = acme.admin.get("/v1/audit")
    assert TOKEN not in trail.text and "other-0123" not in trail.text
    keys = [a["changed_keys"] for a in trail.json() if a["action"] == "settings"]
    assert keys == [
        ["named_credentials.census"],
        [
            "named_credentials.census.url",
            "named_credentials.census.headers.Authorization",
            "named_credentials.census.headers.X-Old",
        ],
        ["named_credentials.census"],
    ]


@pytest.mark.parametrize(
    ("name", "body", "status", "named"),
    [
        ("census", {"url": "ftp://census.example.com"}, 422, "settings.named_credentials.census.url"),
        ("census", {"url": "https://x.example.com", "headers": {"Bad Name": "v"}}, 422, "not an HTTP header name"),
        ("census", {"url": "https://x.example.com", "headers": {"X-A": "v\r\nX-B: w"}}, 422, "must not contain CR"),
        ("census", {"url": "https://x.example.com", "headers": {"X-A": 5}}, 422, "body.headers.X-A"),
        ("census", {"url": "https://x.example.com", "colour": "red"}, 422, "body.colour"),
        ("census", {"headers": {}}, 422, "body.url"),
        ("9census", {"url": "https://x.example.com"}, 422, "path.name"),
        ("a" * 64, {"url": "https://x.example.com"}, 422, "path.name"),
    ],
)
def test_a_bad_credential_is_refused_naming_what_is_wrong_and_nothing_is_stored(
    acme: Tenant, name: str, body: dict[str, Any], status: int, named: str
) -> None:
    assert named in problem(acme.admin.put(f"/v1/credentials/{name}", json=body), status)["detail"]
    assert listed(acme) == []
    assert [a for a in acme.admin.get("/v1/audit").json() if a["action"] == "settings"] == []


def test_deleting_a_credential_that_does_not_exist_is_404(acme: Tenant) -> None:
    assert "no named credential 'census'" in problem(acme.admin.delete("/v1/credentials/census"), 404)["detail"]


def test_a_credential_an_active_circuit_declares_cannot_be_deleted(
    acme: Tenant, vlpr_bundles: dict[str, Path], tmp_path: Path
) -> None:
    put(acme, "census", "https://census.example.com/v1", {"Authorization": TOKEN})
    deploy(acme.admin, variant(vlpr_bundles["1.0.0"], tmp_path / "census.circuit", "4.0.0", CENSUS))
    assert listed(acme)[0]["used_by"] == ["dev: virtual_lpr 4.0.0"]
    detail = problem(acme.admin.delete("/v1/credentials/census"), 409)["detail"]
    assert "dev: virtual_lpr 4.0.0" in detail
    assert [c["name"] for c in listed(acme)] == ["census"]
    deploy(acme.admin, vlpr_bundles["1.0.0"])  # a version that does not declare it
    assert acme.admin.delete("/v1/credentials/census").status_code == 204


def test_only_an_admin_key_manages_credentials_and_only_its_own_tenants(acme: Tenant, globex: Tenant) -> None:
    other = acme.client(acme.key(OTHER_SCOPE["admin"]))
    problem(other.get("/v1/credentials"), 403)
    problem(other.put("/v1/credentials/census", json={"url": "https://x.example.com"}), 403)
    problem(other.delete("/v1/credentials/census"), 403)
    put(globex, "census", "https://census.example.com/v1", {"Authorization": TOKEN})
    assert listed(acme) == []
    problem(acme.admin.delete("/v1/credentials/census"), 404)
    assert [c["name"] for c in listed(globex)] == ["census"]


# --- settings changed while an execution runs ----------------------------------------------------


class SlowCensus:
    """The census endpoint on loopback: the first request waits until released; every request's
    Authorization header is kept."""

    def __init__(self, server: LoopbackServer) -> None:
        self.seen: list[str] = []
        self.first_arrived = threading.Event()
        self.release = threading.Event()
        server.routes["/v1/census"] = self.handle

    def handle(self, request: BaseHTTPRequestHandler) -> None:
        self.seen.append(request.headers.get("authorization", ""))
        if len(self.seen) == 1:
            self.first_arrived.set()
            self.release.wait(20)
        body = b"\x80"  # an empty msgpack map: no census data
        request.send_response(200)
        request.send_header("content-type", "application/msgpack")
        request.send_header("content-length", str(len(body)))
        request.end_headers()
        request.wfile.write(body)


def census_circuits(acme: Tenant, vlpr_bundles: dict[str, Path], tmp_path: Path, loopback: LoopbackServer) -> None:
    """Two circuits declaring ``census`` on Contact inserts: each calls it once, in one execution."""
    acme.configure(callout_allowed_networks=["127.0.0.0/8"])
    put(acme, "census", f"{loopback.base}/v1", {"Authorization": "Bearer old"})
    for name in ("vlpr_a", "vlpr_b"):
        bundle = variant(vlpr_bundles["1.0.0"], tmp_path / f"{name}.circuit", "4.0.0", CENSUS)
        renamed = tmp_path / f"{name}-renamed.circuit"
        _rename(bundle, renamed, name)
        deploy(acme.admin, renamed)
    seeded = acme.admin.post(
        "/v1/records/Circuit_Setting__c?env=dev",
        json={"records": [{"Name": "census_url", "Value__c": "callout:census/census"}]},
    )
    assert seeded.status_code == 200, seeded.text


def _rename(bundle: Path, out: Path, name: str) -> None:
    with zipfile.ZipFile(bundle) as original, zipfile.ZipFile(out, "w") as copy:
        for member in original.namelist():
            data = original.read(member)
            if member == "circuit.toml":
                data = data.decode().replace('name = "virtual_lpr"', f'name = "{name}"', 1).encode()
            copy.writestr(member, data)


def insert_contact(client: httpx.Client, last_name: str) -> dict[str, Any]:
    contact = {"LastName": last_name, "MailingPostalCode": "94105", "Company_Size__c": 500}
    answer = client.post("/v1/records/Contact?env=dev", json={"records": [contact]})
    assert answer.status_code == 200, answer.text
    execution: dict[str, Any] = answer.json()["execution"]
    return execution


def test_an_execution_in_flight_keeps_the_credential_it_started_with_and_the_next_uses_the_new(
    acme: Tenant, vlpr_bundles: dict[str, Path], tmp_path: Path, loopback: LoopbackServer
) -> None:
    census = SlowCensus(loopback)
    census_circuits(acme, vlpr_bundles, tmp_path, loopback)
    writer = acme.client(acme.key("deploy"))
    results: list[dict[str, Any]] = []
    running = threading.Thread(target=lambda: results.append(insert_contact(writer, "InFlight")))
    running.start()
    assert census.first_arrived.wait(20), "the first circuit's callout never arrived"
    changed = put(acme, "census", f"{loopback.base}/v1", {"Authorization": "Bearer new"})  # while it waits
    assert changed.status_code == 200, changed.text
    census.release.set()
    running.join(30)
    assert results and results[0]["status"] == "ok", results
    assert census.seen == ["Bearer old", "Bearer old"]  # the second circuit, after the change, too

    assert insert_contact(writer, "Next")["status"] == "ok"
    assert census.seen[2:] == ["Bearer new", "Bearer new"]


def test_an_execution_in_flight_keeps_the_networks_it_started_with_and_the_next_uses_the_new(
    acme: Tenant, vlpr_bundles: dict[str, Path], tmp_path: Path, loopback: LoopbackServer
) -> None:
    census = SlowCensus(loopback)
    census_circuits(acme, vlpr_bundles, tmp_path, loopback)
    writer = acme.client(acme.key("deploy"))
    results: list[dict[str, Any]] = []
    running = threading.Thread(target=lambda: results.append(insert_contact(writer, "InFlight")))
    running.start()
    assert census.first_arrived.wait(20), "the first circuit's callout never arrived"
    closed = acme.admin.patch("/v1/settings", json={"callout_allowed_networks": []})  # loopback refused from now
    assert closed.status_code == 200, closed.text
    census.release.set()
    running.join(30)
    assert results and results[0]["status"] == "ok", results
    assert len(census.seen) == 2  # the second circuit still reached loopback: the execution's networks

    after = insert_contact(writer, "Next")
    assert after["status"] == "ok"  # Virtual LPR scores without census data when the callout fails
    assert len(census.seen) == 2  # the next execution was refused loopback before connecting
    log = acme.admin.get(f"/v1/executions/{after['id']}").json()["debug_log"]
    assert "callout:census/census" in log and "refused" in log
