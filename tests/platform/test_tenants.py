"""Tenants, their settings, API keys and webhook URL tokens."""

from __future__ import annotations

import base64
import re

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ed25519, rsa

from circuit_host.connectors.crm.gohighlevel import GoHighLevelWebhookSettings as Ghl
from circuit_host.errors import Rejected
from circuit_host.execution.limits import LimitsProfile
from circuit_host.platform import Conflict, NotFound, Platform, Tenant, TenantSettings, records_tenant
from circuit_host.webhooks import CircuitSecretSettings


def test_tenants_get_slug_ids_and_default_settings(platform: Platform) -> None:
    tenant = platform.tenants.create_tenant("Acme Corp!")
    assert re.fullmatch(r"acme-corp-[0-9a-f]{6}", tenant.id)
    assert platform.tenants.get_tenant(tenant.id) == tenant
    assert tenant.id in [t.id for t in platform.tenants.list_tenants()]
    settings = platform.tenants.get_settings(tenant.id)
    assert settings == TenantSettings()
    assert (settings.rate_limit_per_minute, settings.coverage_threshold) == (1000, 75)
    assert settings.max_limits == LimitsProfile()
    assert settings.section(Ghl).allow_unsigned_ghl is False
    assert settings.max_request_bytes == 1024 * 1024
    assert platform.tenants.get_tenant("no-such-tenant") is None


def test_an_explicit_tenant_id(platform: Platform) -> None:
    tenant_id = f"default-{id(platform) % 10_000}"
    assert platform.tenants.create_tenant("Default", tenant_id=tenant_id).id == tenant_id
    with pytest.raises(Conflict, match=r"already exists"):
        platform.tenants.create_tenant("Again", tenant_id=tenant_id)
    with pytest.raises(Rejected, match=r"tenant id"):
        platform.tenants.create_tenant("Bad", tenant_id="Not A Slug")


def test_settings_updates_are_validated_and_kept(platform: Platform, tenant: Tenant) -> None:
    key = ed25519.Ed25519PrivateKey.generate().public_key()
    pem = key.public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo).decode()
    raw = base64.b64encode(key.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)).decode()
    settings = platform.tenants.update_settings(
        tenant.id,
        {
            "rate_limit_per_minute": 5,
            "ghl_public_key": pem,
            "generic_hmac_secret": "s3cret-s3cret-s3cret",
            "max_limits": {"queries": 10},
        },
    )
    assert settings.rate_limit_per_minute == 5
    again = platform.tenants.get_settings(tenant.id)
    secret = again.section(CircuitSecretSettings).generic_hmac_secret
    assert secret is not None and secret.get_secret_value() == "s3cret-s3cret-s3cret"
    assert again.max_limits.queries == 10
    assert again.section(Ghl).ghl_ed25519_key() is not None
    assert (
        platform.tenants.update_settings(tenant.id, {"ghl_public_key": raw}).section(Ghl).ghl_ed25519_key() is not None
    )
    assert platform.tenants.get_tenant(tenant.id).settings.rate_limit_per_minute == 5  # type: ignore[union-attr]

    with pytest.raises(Rejected, match=r"settings.rate_limit_per_minute: "):
        platform.tenants.update_settings(tenant.id, {"rate_limit_per_minute": 0})
    with pytest.raises(Rejected, match=r"settings.colour: unknown setting"):
        platform.tenants.update_settings(tenant.id, {"colour": "red"})
    with pytest.raises(Rejected, match=r"settings.ghl_public_key: not an Ed25519 public key"):
        platform.tenants.update_settings(tenant.id, {"ghl_public_key": "bm90IGEga2V5"})
    rsa_pem = (
        rsa.generate_private_key(public_exponent=65537, key_size=2048)
        .public_key()
        .public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
        .decode()
    )
    with pytest.raises(Rejected, match=r"expected an Ed25519 public key"):
        platform.tenants.update_settings(tenant.id, {"ghl_public_key": rsa_pem})
    updated = platform.tenants.update_settings(tenant.id, {"ghl_legacy_rsa_public_key": rsa_pem})
    assert updated.section(Ghl).ghl_rsa_key() is not None
    with pytest.raises(NotFound):
        platform.tenants.update_settings("no-such-tenant", {})


def test_api_keys_are_stored_hashed_and_shown_once(platform: Platform, tenant: Tenant) -> None:
    key, plaintext = platform.tenants.create_api_key(tenant.id, ["deploy", "read"], "ci")
    assert re.fullmatch(r"cs_[0-9a-f]{16}_[A-Za-z0-9_-]{43}", plaintext)
    secret = plaintext.split("_", 2)[2]
    k = platform.database.tables.api_keys
    with platform.database.engine.connect() as conn:
        stored = [str(v) for v in conn.execute(k.select().where(k.c.id == key.id)).one()]
    assert not any(secret in value for value in stored)

    found = platform.tenants.authenticate(plaintext)
    assert found is not None
    assert (found.id, found.tenant_id, found.label, found.scopes) == (key.id, tenant.id, "ci", {"deploy", "read"})
    assert found.last_used_at is not None
    assert found.allows("deploy") and found.allows("read")
    assert not found.allows("admin") and not found.allows("webhook")
    assert [k.id for k in platform.tenants.list_api_keys(tenant.id)] == [key.id]


@pytest.mark.parametrize(
    "presented",
    ["", "Bearer x", "cs_", "cs_0123456789abcdef", "cs_0123456789abcdef_", "cs_zz_secret", "sk_0123456789abcdef_x"],
)
def test_malformed_keys_do_not_authenticate(platform: Platform, presented: str) -> None:
    assert platform.tenants.authenticate(presented) is None


def test_a_wrong_secret_or_revoked_key_fails(platform: Platform, tenant: Tenant) -> None:
    key, plaintext = platform.tenants.create_api_key(tenant.id, ["webhook"], "hooks")
    assert platform.tenants.authenticate(plaintext[:-1] + ("A" if plaintext[-1] != "A" else "B")) is None
    revoked = platform.tenants.revoke_api_key(tenant.id, key.id)
    assert revoked.revoked_at is not None and not revoked.allows("webhook")
    assert platform.tenants.authenticate(plaintext) is None
    assert platform.tenants.revoke_api_key(tenant.id, key.id).revoked_at == revoked.revoked_at


def test_admin_implies_every_scope(platform: Platform, tenant: Tenant) -> None:
    key, _ = platform.tenants.create_api_key(tenant.id, ["admin"], "root")
    assert all(key.allows(scope) for scope in ("admin", "deploy", "webhook", "read"))


def test_scopes_are_checked(platform: Platform, tenant: Tenant) -> None:
    with pytest.raises(Rejected, match=r"scopes must be a non-empty subset"):
        platform.tenants.create_api_key(tenant.id, ["superuser"], "x")
    with pytest.raises(Rejected, match=r"scopes must be a non-empty subset"):
        platform.tenants.create_api_key(tenant.id, [], "x")
    with pytest.raises(NotFound):
        platform.tenants.create_api_key("no-such-tenant", ["read"], "x")


def test_webhook_tokens_are_shown_once_resolve_and_rotate(platform: Platform, tenant: Tenant) -> None:
    token = platform.tenants.issue_webhook_token(tenant.id, "production")
    assert token is not None and re.fullmatch(r"[A-Za-z0-9_-]{43}", token)
    assert platform.tenants.issue_webhook_token(tenant.id, "production") is None  # stored hashed: shown once
    staging = platform.tenants.issue_webhook_token(tenant.id, "staging")
    assert staging is not None and staging != token
    assert platform.tenants.resolve_webhook_token(token) == (tenant.id, "production")
    assert platform.tenants.resolve_webhook_token(staging) == (tenant.id, "staging")

    rotated = platform.tenants.rotate_webhook_token(tenant.id, "production")
    assert rotated != token
    assert platform.tenants.resolve_webhook_token(token) is None
    assert platform.tenants.resolve_webhook_token(rotated) == (tenant.id, "production")
    assert platform.tenants.issue_webhook_token(tenant.id, "production") is None
    assert platform.tenants.resolve_webhook_token("x" * 43) is None
    assert platform.tenants.resolve_webhook_token("") is None
    with pytest.raises(Rejected, match=r"unknown environment 'prod'"):
        platform.tenants.issue_webhook_token(tenant.id, "prod")
    fresh = platform.tenants.create_tenant("Fresh")
    first = platform.tenants.rotate_webhook_token(fresh.id, "dev")  # rotating makes one where there was none
    assert platform.tenants.resolve_webhook_token(first) == (fresh.id, "dev")


def test_records_tenant_names_the_environment() -> None:
    assert records_tenant("acme-1a2b3c", "staging") == "acme-1a2b3c:staging"
    assert records_tenant("acme-1a2b3c", "dev") == "acme-1a2b3c:dev"
    with pytest.raises(Rejected):
        records_tenant("acme", "qa")
