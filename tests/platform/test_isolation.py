"""One tenant can never read or change another tenant's data through the platform store."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime, timedelta

import pytest

from circuit_host.errors import Rejected
from circuit_host.platform import ExecutionEntry, NotFound, Platform
from circuit_host.sandbox.runtime import Runtime


def test_tenants_are_isolated(platform: Platform, runtime: Runtime, make_bundle: Callable[..., bytes]) -> None:
    acme, other = platform.create_tenant("Acme"), platform.create_tenant("Other")
    data = make_bundle()
    bundle = platform.store_bundle(acme.id, data, runtime, "alice")
    platform.deploy(acme.id, "production", "scorer", "1.0.0", "alice")
    key, _ = platform.create_api_key(acme.id, ["admin"], "acme admin")
    started = datetime(2026, 7, 1, tzinfo=UTC)
    platform.save_execution(
        ExecutionEntry(
            "ex-acme-1", acme.id, "production", "scorer", "1.0.0", "Contact.after_insert", "ok", started, 1.0
        )
    )
    platform.remember_records(acme.id, "production", "Contact", [{"Id": "c1", "Email": "secret@acme"}])
    assert platform.remember_webhook_id(acme.id, "ghl", "wh-1", 300)

    # Nothing of Acme's is visible to Other...
    assert platform.get_bundle(other.id, "scorer", "1.0.0") is None
    assert platform.get_bundle_by_sha(other.id, bundle.sha256) is None
    assert platform.bundle_bytes(other.id, bundle.sha256) is None
    with pytest.raises(NotFound):
        platform.bundle_wasm(other.id, bundle.sha256)
    assert platform.list_bundles(other.id) == []
    assert platform.active_circuits(other.id, "production") == []
    assert platform.audit_log(other.id) == []
    assert platform.list_api_keys(other.id) == []
    assert platform.get_execution(other.id, "ex-acme-1") is None
    assert platform.list_executions(other.id) == []
    with pytest.raises(NotFound):
        platform.list_executions(other.id, before_id="ex-acme-1")
    assert platform.last_seen(other.id, "production", "Contact", ["c1"]) == {}
    assert platform.remember_webhook_id(other.id, "ghl", "wh-1", 300)  # a separate replay window

    # ...and nothing of Acme's can be changed by acting as Other.
    with pytest.raises(NotFound):
        platform.revoke_api_key(other.id, key.id)
    with pytest.raises(NotFound):
        platform.deploy(other.id, "production", "scorer", "1.0.0", "mallory")
    with pytest.raises(NotFound):
        platform.rollback(other.id, "production", "scorer", "mallory", to_version="1.0.0")
    with pytest.raises(NotFound):
        platform.undeploy(other.id, "production", "scorer", "mallory")
    with pytest.raises(NotFound):
        platform.promote(other.id, "production", "dev", "mallory")
    assert platform.purge_executions(other.id, started + timedelta(days=1)) == 0
    platform.forget_records(other.id, "production", "Contact", ["c1"])

    # Other's own upload of the same bytes is its own copy.
    assert platform.store_bundle(other.id, data, runtime, "olga").tenant_id == other.id

    assert [c.name for c in platform.active_circuits(acme.id, "production")] == ["scorer"]
    assert platform.get_execution(acme.id, "ex-acme-1") is not None
    assert platform.last_seen(acme.id, "production", "Contact", ["c1"]) == {"c1": {"Id": "c1", "Email": "secret@acme"}}
    assert [k.revoked_at for k in platform.list_api_keys(acme.id)] == [None]
    assert platform.authenticate("cs_" + key.id + "_guess") is None


def test_webhook_tokens_belong_to_one_tenant_environment(platform: Platform) -> None:
    acme, other = platform.create_tenant("Acme"), platform.create_tenant("Other")
    token = platform.webhook_token(acme.id, "dev")
    assert platform.resolve_webhook_token(token) == (acme.id, "dev")
    assert platform.webhook_token(other.id, "dev") != token
    with pytest.raises(NotFound):
        platform.webhook_token("no-such-tenant", "dev")
    with pytest.raises(Rejected):
        platform.webhook_token(acme.id, "../dev")
