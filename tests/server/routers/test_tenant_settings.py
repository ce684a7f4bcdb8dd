"""/v1/settings: an admin reads the tenant's settings (secrets only as fingerprints) and changes them
by merge patch; bad input is refused naming each setting and changes nothing; every change is audited
by name, never by value."""

from __future__ import annotations

from typing import Any

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat
from pydantic import BaseModel, ConfigDict, SecretStr

from circuit_host.connectors.crm.crm_registry import CrmPlugin, registered
from tests.server.conftest import GENERIC_SECRET
from tests.server.routers.conftest import OTHER_SCOPE, Tenant, ghl_signed, problem
from tests.server.test_end_to_end import ghl_contact

NEW_SECRET = "a-new-generic-secret-0123456789abcdef"
ACCEPTED = (200, 202)  # run at once, or queued for a job worker


def settings(tenant: Tenant) -> dict[str, Any]:
    answer = tenant.admin.get("/v1/settings")
    assert answer.status_code == 200, answer.text
    body: dict[str, Any] = answer.json()
    return body


def fingerprint(tenant: Tenant, secret: str) -> str:
    """What the server shows for ``secret``: keyed by its master key."""
    return tenant.server.state.platform.tenants.fingerprint(secret)


def patch(tenant: Tenant, changes: dict[str, Any]) -> Any:
    return tenant.admin.patch("/v1/settings", json=changes)


def settings_audit(tenant: Tenant) -> list[dict[str, Any]]:
    return [a for a in tenant.admin.get("/v1/audit").json() if a["action"] == "settings"]


def ghl_webhook_status(tenant: Tenant) -> int:
    raw, headers = ghl_signed(tenant.ghl_key, ghl_contact(lastName="Signed"))
    return int(tenant.admin.post("/v1/hooks/ghl?env=dev", content=raw, headers=headers).status_code)


def test_secrets_are_shown_as_set_with_a_fingerprint_never_as_values(acme: Tenant) -> None:
    answer = acme.admin.get("/v1/settings")
    assert GENERIC_SECRET not in answer.text
    shown = answer.json()
    assert shown["generic_hmac_secret"] == {"set": True, "fingerprint": fingerprint(acme, GENERIC_SECRET)}
    assert len(shown["generic_hmac_secret"]["fingerprint"]) == 12
    assert shown["ghl_location_ids"] and shown["ghl_public_key"]  # a public key is not a secret
    assert shown["rate_limit_per_minute"] == 1000 and shown["max_limits"]["fuel"] > 0

    assert patch(acme, {"generic_hmac_secret": None}).json()["generic_hmac_secret"] == {"set": False}


def test_a_patch_changes_only_the_settings_it_names_and_they_take_effect(acme: Tenant) -> None:
    before = settings(acme)
    answer = patch(acme, {"coverage_threshold": 90, "generic_hmac_secret": NEW_SECRET, "ghl_location_ids": ["loc-2"]})
    assert answer.status_code == 200, answer.text
    assert NEW_SECRET not in answer.text
    after = answer.json()
    assert after == settings(acme)
    assert after["coverage_threshold"] == 90 and after["ghl_location_ids"] == ["loc-2"]
    assert after["generic_hmac_secret"]["fingerprint"] == fingerprint(acme, NEW_SECRET)
    untouched = {k for k in before if k not in ("coverage_threshold", "generic_hmac_secret", "ghl_location_ids")}
    assert {k: after[k] for k in untouched} == {k: before[k] for k in untouched}
    assert ghl_webhook_status(acme) == 403  # the webhook's location is no longer one this tenant accepts


def test_null_clears_an_optional_setting_and_returns_another_to_its_default(acme: Tenant) -> None:
    assert ghl_webhook_status(acme) in ACCEPTED
    assert patch(acme, {"rate_limit_per_minute": 50}).json()["rate_limit_per_minute"] == 50
    cleared = patch(acme, {"ghl_public_key": None, "rate_limit_per_minute": None}).json()
    assert cleared["ghl_public_key"] is None
    assert cleared["rate_limit_per_minute"] == 1000
    assert ghl_webhook_status(acme) == 401  # no key configured: a signed webhook cannot be verified


def test_unknown_names_are_refused_naming_each_and_nothing_changes(acme: Tenant) -> None:
    before = settings(acme)
    detail = problem(patch(acme, {"colour": "red", "rate_limit_per_minute": 5, "shoe_size": 44}), 422)["detail"]
    assert "settings.colour: unknown setting" in detail and "settings.shoe_size: unknown setting" in detail
    assert settings(acme) == before


@pytest.mark.parametrize(
    ("changes", "named"),
    [
        ({"rate_limit_per_minute": "fast"}, "settings.rate_limit_per_minute: Input should be a valid integer"),
        ({"rate_limit_per_minute": 0}, "settings.rate_limit_per_minute: Input should be greater than or equal to 1"),
        ({"coverage_threshold": [75]}, "settings.coverage_threshold: Input should be a valid integer"),
        ({"ghl_location_ids": "loc-1"}, "settings.ghl_location_ids: Input should be a valid list"),
        ({"allow_unsigned_ghl": "perhaps"}, "settings.allow_unsigned_ghl: Input should be a valid boolean"),
        ({"max_limits": {"fuel": -1}}, "settings.max_limits.fuel: Input should be greater than or equal to 1"),
        ({"callout_allowed_networks": ["10.1.2.300/24"]}, "settings.callout_allowed_networks.0: "),
        ({"generic_hmac_secret": "short"}, "settings.generic_hmac_secret: generic_hmac_secret must be at least"),
        ({"generic_hmac_secret": {"set": True, "fingerprint": "0123456789ab"}}, "settings.generic_hmac_secret: "),
        ({"named_credentials": {"x": {"url": "ftp://x"}}}, "settings.named_credentials.x.url: String should match"),
    ],
)
def test_wrong_types_and_values_are_refused_naming_the_setting_and_nothing_changes(
    acme: Tenant, changes: dict[str, Any], named: str
) -> None:
    before = settings(acme)
    assert named in problem(patch(acme, changes), 422)["detail"]
    assert settings(acme) == before
    assert settings_audit(acme) == []


@pytest.mark.parametrize(
    "bad_key",
    [
        "-----BEGIN PUBLIC KEY-----\nbm90IGEga2V5\n-----END PUBLIC KEY-----\n",
        "bm90IGEga2V5",  # base64, but not 32 bytes or a key
        "-----BEGIN PUBLIC KEY-----\nMCowBQYDK2VwAyEA",  # truncated PEM
    ],
)
def test_a_malformed_ghl_public_key_is_refused_and_the_configured_key_keeps_working(acme: Tenant, bad_key: str) -> None:
    before = settings(acme)
    detail = problem(patch(acme, {"ghl_public_key": bad_key}), 422)["detail"]
    assert detail.startswith("settings.ghl_public_key: ")
    assert settings(acme) == before
    assert ghl_webhook_status(acme) in ACCEPTED  # still verified with the key that was there


def test_a_new_ghl_public_key_is_used_for_the_next_webhook(acme: Tenant) -> None:
    new_key = Ed25519PrivateKey.generate()
    pem = new_key.public_key().public_bytes(Encoding.PEM, PublicFormat.SubjectPublicKeyInfo).decode()
    assert patch(acme, {"ghl_public_key": pem}).status_code == 200
    assert ghl_webhook_status(acme) == 401  # signed with the old key
    acme.ghl_key = new_key
    assert ghl_webhook_status(acme) in ACCEPTED


def test_every_change_is_audited_with_who_and_which_names_never_values(acme: Tenant) -> None:
    [own_key] = acme.admin.get("/v1/keys").json()
    patch(acme, {"generic_hmac_secret": NEW_SECRET, "coalesce_window_ms": 250, "max_limits": {"queries": 7}})
    patch(acme, {"coalesce_window_ms": 250})  # nothing changes: nothing to audit
    answer = acme.admin.get("/v1/audit")
    assert NEW_SECRET not in answer.text and GENERIC_SECRET not in answer.text
    [entry] = [a for a in answer.json() if a["action"] == "settings"]
    assert entry["actor"] == f"key:{own_key['id']}"
    assert entry["at"] and entry["env"] is None and entry["circuit"] == ""
    assert sorted(entry["changed_keys"]) == ["coalesce_window_ms", "generic_hmac_secret", "max_limits.queries"]


def test_only_an_admin_key_reads_or_changes_settings_and_only_its_own_tenants(acme: Tenant, globex: Tenant) -> None:
    other = acme.client(acme.key(OTHER_SCOPE["admin"]))
    problem(other.get("/v1/settings"), 403)
    problem(other.patch("/v1/settings", json={"coverage_threshold": 1}), 403)
    problem(acme.client(None).get("/v1/settings"), 401)
    patch(globex, {"coverage_threshold": 1, "generic_hmac_secret": NEW_SECRET})
    assert settings(acme)["coverage_threshold"] == 75
    assert settings(acme)["generic_hmac_secret"]["fingerprint"] == fingerprint(acme, GENERIC_SECRET)
    assert settings_audit(acme) == []


def test_a_body_that_is_not_an_object_is_refused(acme: Tenant) -> None:
    problem(acme.admin.patch("/v1/settings", json=["rate_limit_per_minute", 5]), 422)
    problem(acme.admin.patch("/v1/settings", content=b"{", headers={"content-type": "application/json"}), 422)


class VaultSettings(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    vault_token: SecretStr | None = None
    vault_region: str = "eu"


def test_a_secret_of_a_crm_registered_later_is_masked_too(acme: Tenant) -> None:
    """Secrets are found from the models: a plugin's new SecretStr needs no change in the server."""
    plugin: CrmPlugin[VaultSettings] = CrmPlugin(
        source="vault", title="Vault", configuration=VaultSettings, verify=lambda *a: None, normalize=lambda *a: []
    )
    with registered(plugin):
        assert settings(acme)["vault_token"] == {"set": False}
        answer = patch(acme, {"vault_token": "s3cr3t-vault-token", "vault_region": "us"})
        assert answer.status_code == 200, answer.text
        assert "s3cr3t-vault-token" not in answer.text + acme.admin.get("/v1/settings").text
        assert answer.json()["vault_token"] == {"set": True, "fingerprint": fingerprint(acme, "s3cr3t-vault-token")}
        assert answer.json()["vault_region"] == "us"
        patch(acme, {"vault_token": None, "vault_region": None})  # the tenant stays valid once it is unregistered


def test_the_openapi_document_shows_secrets_as_their_state(acme: Tenant) -> None:
    document = acme.admin.get("/openapi.json").json()
    schemas = document["components"]["schemas"]
    view = schemas["TenantSettingsView"]["properties"]
    assert view["generic_hmac_secret"] == {
        "$ref": "#/components/schemas/SecretState",
        "description": "HMAC-SHA256 secret for generic webhooks.",
    }
    assert "rate_limit_per_minute" in view and "ghl_public_key" in view
    headers = schemas["NamedCredentialView"]["properties"]["headers"]
    assert headers["additionalProperties"] == {"$ref": "#/components/schemas/SecretState"}
    assert {"get", "patch"} <= set(document["paths"]["/v1/settings"])
