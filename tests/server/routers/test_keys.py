"""/v1/keys: a tenant's admins create, list and revoke its API keys; the key itself is shown once."""

from __future__ import annotations

from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from circuit_host.server import ServerSettings, create_app
from circuit_host.server.state import ServerState
from tests.server.routers.conftest import Tenant, problem

ROUTES = [("POST", "/v1/keys"), ("GET", "/v1/keys"), ("DELETE", "/v1/keys/some-key-id")]


def test_a_created_key_is_shown_once_and_works_with_exactly_its_scopes(acme: Tenant) -> None:
    created = acme.admin.post("/v1/keys", json={"scopes": ["read", "webhook"], "label": "dashboards"})
    assert created.status_code == 201, created.text
    new = created.json()
    assert new["scopes"] == ["read", "webhook"] and new["label"] == "dashboards" and new["revoked"] is False
    assert new["key"]
    listed = {k["id"]: k for k in acme.admin.get("/v1/keys").json()}
    assert listed[new["id"]] == {k: v for k, v in new.items() if k != "key"}  # never listed again
    assert all("key" not in k for k in listed.values())
    reader = acme.client(new["key"])
    assert reader.get("/v1/executions").status_code == 200
    problem(reader.get("/v1/keys"), 403)


def test_the_label_is_optional(acme: Tenant) -> None:
    created = acme.admin.post("/v1/keys", json={"scopes": ["deploy"]})
    assert created.status_code == 201, created.text
    assert created.json()["label"] == ""


def test_a_revoked_key_is_refused_at_once_and_listed_as_revoked(acme: Tenant) -> None:
    new = acme.admin.post("/v1/keys", json={"scopes": ["read"]}).json()
    reader = acme.client(new["key"])
    assert reader.get("/v1/executions").status_code == 200
    revoked = acme.admin.delete(f"/v1/keys/{new['id']}")
    assert revoked.status_code == 204 and revoked.content == b""
    assert "unknown or revoked" in problem(reader.get("/v1/executions"), 401)["detail"]
    assert {k["id"]: k["revoked"] for k in acme.admin.get("/v1/keys").json()}[new["id"]] is True
    assert acme.admin.delete(f"/v1/keys/{new['id']}").status_code == 204  # revoking again changes nothing


def test_an_admin_can_revoke_its_own_key(acme: Tenant) -> None:
    [own] = acme.admin.get("/v1/keys").json()
    assert acme.admin.delete(f"/v1/keys/{own['id']}").status_code == 204
    problem(acme.admin.get("/v1/keys"), 401)


def test_another_tenants_keys_are_neither_listed_nor_revocable(acme: Tenant, globex: Tenant) -> None:
    globex_key = globex.key("read")
    [globex_key_id] = [k["id"] for k in globex.admin.get("/v1/keys").json() if k["scopes"] == ["read"]]
    assert globex_key_id not in {k["id"] for k in acme.admin.get("/v1/keys").json()}
    problem(acme.admin.delete(f"/v1/keys/{globex_key_id}"), 404)
    assert globex.client(globex_key).get("/v1/executions").status_code == 200  # still valid


def test_revoking_an_unknown_key_is_404(acme: Tenant) -> None:
    problem(acme.admin.delete("/v1/keys/no-such-key"), 404)


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"scopes": []}, "body.scopes"),
        ({"scopes": ["root"]}, "body.scopes.0"),
        ({}, "body.scopes"),
        ({"scopes": ["read"], "label": "x" * 201}, "body.label"),
    ],
)
def test_bad_key_requests_are_422_naming_the_field(acme: Tenant, body: dict[str, object], field: str) -> None:
    detail = problem(acme.admin.post("/v1/keys", json=body), 422)["detail"]
    assert detail.startswith(f"{field}:") or f"; {field}:" in detail, detail
    assert [k["scopes"] for k in acme.admin.get("/v1/keys").json()] == [["admin"]]  # nothing was created


@pytest.mark.parametrize(("method", "path"), ROUTES)
def test_every_route_needs_an_admin_key(acme: Tenant, method: str, path: str) -> None:
    body = {"scopes": ["read"]} if method == "POST" else None
    missing = acme.client(None).request(method, path, json=body)
    assert "Bearer" in problem(missing, 401)["detail"] and missing.headers["www-authenticate"] == "Bearer"
    problem(acme.client("cs_not_a_key").request(method, path, json=body), 401)
    basic = acme.client(None).request(method, path, json=body, headers={"authorization": "Basic YWRtaW46YWRtaW4="})
    problem(basic, 401)
    problem(acme.client(acme.key("deploy", "read", "webhook")).request(method, path, json=body), 403)


def test_guessing_keys_or_webhook_tokens_from_one_address_is_throttled(tmp_path: Path, module_cache: Path) -> None:
    """Bad credentials used to cost nothing (66 in 3 s, no 429): after the setting's number of bad
    keys or webhook tokens, the address gets 429 with Retry-After, good key or not (issue 11, item 17)."""
    settings = ServerSettings(data_dir=tmp_path / "data", cache_dir=module_cache, failed_auth_per_minute=5)
    state = ServerState(settings)
    try:
        tenant = state.platform.tenants.create_tenant("Guessed")
        _, good = state.platform.tenants.create_api_key(tenant.id, ["admin"], "good")
        with TestClient(create_app(settings, state)) as client:
            for attempt in range(3):
                assert client.get("/v1/keys", headers={"authorization": f"Bearer cs_guess{attempt}"}).status_code == 401
            for attempt in range(2):
                assert client.post(f"/v1/hooks/generic/not-a-token-{attempt}", content=b"{}").status_code == 404
            throttled = client.get("/v1/keys", headers={"authorization": "Bearer cs_guess_again"})
            assert throttled.status_code == 429
            assert int(throttled.headers["retry-after"]) >= 1
            assert client.get("/v1/keys", headers={"authorization": f"Bearer {good}"}).status_code == 429
            assert client.post("/v1/hooks/generic/another", content=b"{}").status_code == 429
    finally:
        state.close()


def test_the_tenants_request_size_setting_is_enforced(acme: Tenant) -> None:
    """``max_request_bytes`` per tenant was never enforced (issue 11, item 17)."""
    acme.configure(max_request_bytes=2048)
    big = {"records": [{"LastName": "x" * 4000}]}
    answer = acme.admin.post("/v1/records/Contact", json=big)
    problem(answer, 413)
    small = acme.admin.post("/v1/records/Contact", json={"records": [{"LastName": "small"}]})
    assert small.status_code == 200, small.text
