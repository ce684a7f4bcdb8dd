"""The request path's credential cache: keys and tenant settings as last read, for one second, and
never past a change this process made (``server/credential_cache.py``)."""

from __future__ import annotations

import time

from circuit_host.server.credential_cache import CredentialCache
from circuit_host.server.master_key import open_platform
from tests.server.routers.conftest import Tenant


def test_a_revocation_here_refuses_the_key_on_the_next_request(acme: Tenant) -> None:
    key = acme.key("read")
    client = acme.client(key)
    assert client.get("/v1/environments/dev/circuits").status_code == 200  # now cached
    key_id = key.split("_")[1]
    acme.server.state.platform.tenants.revoke_api_key(acme.id, key_id)
    assert client.get("/v1/environments/dev/circuits").status_code == 401


def test_a_settings_change_here_applies_to_the_next_request(acme: Tenant) -> None:
    assert acme.admin.get("/v1/environments/dev/circuits").status_code == 200  # settings cached
    acme.configure(rate_limit_per_minute=1)
    assert acme.admin.get("/v1/environments/dev/circuits").status_code == 200  # the one allowed
    assert acme.admin.get("/v1/environments/dev/circuits").status_code == 429


def test_a_revocation_by_another_process_applies_within_a_second(acme: Tenant) -> None:
    key = acme.key("read")
    client = acme.client(key)
    assert client.get("/v1/environments/dev/circuits").status_code == 200
    with open_platform(acme.server.state.settings) as other:  # another server of the same data
        other.tenants.revoke_api_key(acme.id, key.split("_")[1])
    deadline = time.monotonic() + 1.5
    while client.get("/v1/environments/dev/circuits").status_code == 200:
        assert time.monotonic() < deadline, "the revoked key still worked after the cache's second"
        time.sleep(0.05)
    assert client.get("/v1/environments/dev/circuits").status_code == 401


def test_entries_expire_after_their_second(acme: Tenant) -> None:
    now = [100.0]
    tenants = acme.server.state.platform.tenants
    cache = CredentialCache(tenants, ttl_s=1.0, clock=lambda: now[0])
    key = acme.key("read")
    found = tenants.authenticate(key)
    assert found is not None and cache.key(key) is None
    cache.remember_key(key, found, tenants.changes)
    assert cache.key(key) == found
    now[0] += 0.999
    assert cache.key(key) == found
    now[0] += 0.002
    assert cache.key(key) is None  # expired, and dropped


def test_a_failed_authentication_is_never_cached(acme: Tenant) -> None:
    bad = acme.key("read") + "x"
    assert acme.client(bad).get("/v1/environments/dev/circuits").status_code == 401
    assert acme.server.state.credentials.key(bad) is None


def test_an_entry_read_before_a_change_here_is_not_trusted(acme: Tenant) -> None:
    tenants = acme.server.state.platform.tenants
    cache = CredentialCache(tenants)
    settings = tenants.get_settings(acme.id)
    cache.remember_settings(acme.id, settings, tenants.changes - 1)  # read before the latest change
    assert cache.settings(acme.id) is None
    cache.remember_settings(acme.id, settings, tenants.changes)
    assert cache.settings(acme.id) == settings
