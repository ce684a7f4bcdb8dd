"""Tenant settings are sealed under the master key, bound to their tenant; webhook tokens are stored hashed.

Every test runs on SQLite and on PostgreSQL and reads the stored columns with plain SQL, as someone
holding a copy of the database would.
"""

from __future__ import annotations

from collections.abc import Callable

import pytest
import sqlalchemy as sa

from circuit_host.platform import MasterKey, MasterKeyError, Platform, SealedValueError, SecretBox, Tenant
from circuit_host.platform.secret_box import is_sealed
from circuit_host.webhooks.signing import CircuitSecretSettings
from tests.conftest import TEST_BOX

HMAC_SECRET = "hmac-secret-at-rest-8d1f0c"
HEADER_SECRET = "Bearer header-secret-at-rest-3e9a77"


def stored(platform: Platform, tenant_id: str) -> str:
    t = platform.database.tables.tenants
    with platform.database.read() as conn:
        return str(conn.execute(sa.select(t.c.settings).where(t.c.id == tenant_id)).scalar_one())


def set_stored(platform: Platform, tenant_id: str, value: str) -> None:
    t = platform.database.tables.tenants
    with platform.database.write() as conn:
        conn.execute(t.update().where(t.c.id == tenant_id).values(settings=value))


def configure_secrets(platform: Platform, tenant: Tenant) -> None:
    platform.tenants.update_settings(
        tenant.id,
        {
            "generic_hmac_secret": HMAC_SECRET,
            "named_credentials": {
                "census": {"url": "https://census.example/v1", "headers": {"Authorization": HEADER_SECRET}}
            },
        },
    )


def test_settings_are_stored_sealed_and_read_back(platform: Platform, tenant: Tenant) -> None:
    configure_secrets(platform, tenant)
    raw = stored(platform, tenant.id)
    assert is_sealed(raw) and raw.startswith(f"cs1.{TEST_BOX.current.id}.")
    for secret in (HMAC_SECRET, HEADER_SECRET, "census.example", "rate_limit_per_minute"):
        assert secret not in raw  # the whole document is sealed, names included
    settings = platform.tenants.get_settings(tenant.id)
    assert settings.named_credentials["census"].secret_headers() == {"Authorization": HEADER_SECRET}
    hmac = settings.section(CircuitSecretSettings).generic_hmac_secret
    assert hmac is not None and hmac.get_secret_value() == HMAC_SECRET
    assert platform.tenants.update_settings(tenant.id, {"coverage_threshold": 10}).coverage_threshold == 10
    assert platform.tenants.get_settings(tenant.id).named_credentials["census"].secret_headers() == {
        "Authorization": HEADER_SECRET
    }  # a partial update keeps the sealed secrets
    assert stored(platform, tenant.id) != raw  # a fresh nonce on every write


def test_settings_copied_into_another_tenants_row_do_not_open(platform: Platform, tenant: Tenant) -> None:
    configure_secrets(platform, tenant)
    other = platform.tenants.create_tenant("Other")
    platform.tenants.get_settings(tenant.id)  # cached under the source tenant
    own = stored(platform, other.id)
    set_stored(platform, other.id, stored(platform, tenant.id))
    with pytest.raises(SealedValueError, match=rf"tenant-settings:{other.id} does not decrypt"):
        platform.tenants.get_settings(other.id)
    with pytest.raises(SealedValueError):
        platform.tenants.update_settings(other.id, {"coverage_threshold": 1})
    assert platform.tenants.get_settings(tenant.id).coverage_threshold == 75  # the source is untouched
    set_stored(platform, other.id, own)  # the module's next platform checks every row when it opens


def test_a_damaged_or_plaintext_value_is_refused_with_a_clear_error(platform: Platform, tenant: Tenant) -> None:
    raw = stored(platform, tenant.id)
    set_stored(platform, tenant.id, raw[:-4] + ("AAAA" if not raw.endswith("AAAA") else "BBBB"))
    with pytest.raises(SealedValueError, match="damaged or copied"):
        platform.tenants.get_settings(tenant.id)
    set_stored(platform, tenant.id, '{"coverage_threshold": 0}')  # written behind the platform's back
    with pytest.raises(SealedValueError, match="is not encrypted"):
        platform.tenants.get_settings(tenant.id)
    set_stored(platform, tenant.id, raw)


def test_opening_with_another_master_key_is_refused_and_changes_nothing(
    platform: Platform, tenant: Tenant, open_platform: Callable[..., Platform]
) -> None:
    configure_secrets(platform, tenant)
    before = stored(platform, tenant.id)
    wrong = SecretBox(MasterKey.generate("the wrong place"))
    with pytest.raises(MasterKeyError, match=rf"under master key {TEST_BOX.current.id}, but this host has master key "):
        open_platform(secret_box=wrong)
    assert stored(platform, tenant.id) == before
    assert open_platform(secret_box=SecretBox(MasterKey.generate(), TEST_BOX.current)).tenants.get_settings(tenant.id)


def test_resealing_moves_every_tenant_to_the_new_key_in_one_go(
    platform: Platform, tenant: Tenant, open_platform: Callable[..., Platform]
) -> None:
    configure_secrets(platform, tenant)
    mine = {tenant.id, platform.tenants.create_tenant("Second").id}
    rotating = open_platform()
    new_key = MasterKey.generate()
    assert rotating.tenants.reseal_settings(SecretBox(new_key, TEST_BOX.current)) >= 2
    assert {stored(platform, t).split(".")[1] for t in mine} == {new_key.id}
    assert new_key.id in rotating.tenants.key_ids_in_use()
    assert rotating.tenants.get_settings(tenant.id).named_credentials["census"].secret_headers()["Authorization"] == (
        HEADER_SECRET
    )
    assert open_platform(secret_box=SecretBox(new_key)).tenants.get_settings(tenant.id).coverage_threshold == 75
    with pytest.raises(MasterKeyError):
        platform.tenants.get_settings(tenant.id)  # a process still on the old key cannot read them
    rotating.tenants.reseal_settings(SecretBox(TEST_BOX.current, new_key))  # back, for the module's other tests
    rotating.tenants.reseal_settings(TEST_BOX)  # a second pass finds nothing to move and changes nothing


def test_webhook_tokens_are_stored_as_hashes_only(platform: Platform, tenant: Tenant) -> None:
    token = platform.tenants.rotate_webhook_token(tenant.id, "production")
    w = platform.database.tables.webhook_tokens
    with platform.database.read() as conn:
        rows = [tuple(r) for r in conn.execute(sa.select(w).where(w.c.tenant_id == tenant.id))]
    assert rows and not any(token in str(value) for row in rows for value in row)
    assert platform.tenants.resolve_webhook_token(token) == (tenant.id, "production")


def test_a_master_key_is_32_url_safe_bytes_and_never_shown() -> None:
    key = MasterKey.generate("tests")
    assert MasterKey.parse(key.encoded() + "\n", "a file") == MasterKey(key.material, "a file")
    assert key.encoded() not in repr(key) and str(key.material) not in repr(key)
    for bad in ("", "short", key.encoded() + "AAAA", key.encoded()[:-1] + "!", "=" * 44):
        with pytest.raises(MasterKeyError, match=r"from CIRCUIT_MASTER_KEY is not 32 bytes in url-safe base64"):
            MasterKey.parse(bad, "CIRCUIT_MASTER_KEY")


def test_a_sealed_value_opens_only_in_its_context_and_under_its_key() -> None:
    box = SecretBox(MasterKey.generate())
    sealed = box.seal(b"secret", "tenant-settings:acme")
    assert box.open(sealed, "tenant-settings:acme") == b"secret"
    assert b"secret" not in sealed.encode()
    with pytest.raises(SealedValueError):
        box.open(sealed, "tenant-settings:globex")
    with pytest.raises(MasterKeyError, match=r"encrypted under master key [0-9a-f]{8}"):
        SecretBox(MasterKey.generate()).open(sealed, "tenant-settings:acme")
    forged = sealed.replace(f".{box.current.id}.", f".{TEST_BOX.current.id}.")
    with pytest.raises(SealedValueError):
        SecretBox(box.current, TEST_BOX.current).open(forged, "tenant-settings:acme")  # the key id is bound too
