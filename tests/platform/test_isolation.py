"""One tenant can never read or change another tenant's data through the platform store."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime, timedelta

import pytest

from circuit_host.errors import Rejected
from circuit_host.platform import ExecutionEntry, NotFound, Platform
from circuit_host.sandbox.runtime import Runtime
from circuit_host.server.deploy_path import upload_bundle


def test_tenants_are_isolated(platform: Platform, runtime: Runtime, make_bundle: Callable[..., bytes]) -> None:
    acme, other = platform.tenants.create_tenant("Acme"), platform.tenants.create_tenant("Other")
    data = make_bundle()
    bundle = upload_bundle(platform, runtime, acme.id, data, "alice")
    platform.deployments.deploy(acme.id, "production", "scorer", "1.0.0", "alice")
    key, _ = platform.tenants.create_api_key(acme.id, ["admin"], "acme admin")
    started = datetime(2026, 7, 1, tzinfo=UTC)
    platform.executions.save_execution(
        ExecutionEntry(
            "ex-acme-1", acme.id, "production", "scorer", "1.0.0", "Contact.after_insert", "ok", started, 1.0
        )
    )
    platform.webhooks.remember_records(acme.id, "production", "Contact", [{"Id": "c1", "Email": "secret@acme"}])
    assert platform.webhooks.remember_webhook_id(acme.id, "ghl", "wh-1", 300)

    # Nothing of Acme's is visible to Other...
    assert platform.bundles.get_bundle(other.id, "scorer", "1.0.0") is None
    assert platform.bundles.get_bundle_by_sha(other.id, bundle.sha256) is None
    assert platform.bundles.bundle_bytes(other.id, bundle.sha256) is None
    with pytest.raises(NotFound):
        platform.bundles.bundle_wasm(other.id, bundle.sha256)
    assert platform.bundles.list_bundles(other.id) == []
    assert platform.deployments.active_circuits(other.id, "production") == []
    assert platform.audit.audit_log(other.id) == []
    assert platform.tenants.list_api_keys(other.id) == []
    assert platform.executions.get_execution(other.id, "ex-acme-1") is None
    assert platform.executions.list_executions(other.id) == []
    with pytest.raises(NotFound):
        platform.executions.list_executions(other.id, before_id="ex-acme-1")
    assert platform.webhooks.last_seen(other.id, "production", "Contact", ["c1"]) == {}
    assert platform.webhooks.remember_webhook_id(other.id, "ghl", "wh-1", 300)  # a separate replay window

    # ...and nothing of Acme's can be changed by acting as Other.
    with pytest.raises(NotFound):
        platform.tenants.revoke_api_key(other.id, key.id)
    with pytest.raises(NotFound):
        platform.deployments.deploy(other.id, "production", "scorer", "1.0.0", "mallory")
    with pytest.raises(NotFound):
        platform.deployments.rollback(other.id, "production", "scorer", "mallory", to_version="1.0.0")
    with pytest.raises(NotFound):
        platform.deployments.undeploy(other.id, "production", "scorer", "mallory")
    with pytest.raises(NotFound):
        platform.deployments.promote(other.id, "production", "dev", "mallory")
    assert platform.executions.purge_executions(other.id, started + timedelta(days=1)) == 0
    platform.webhooks.forget_records(other.id, "production", "Contact", ["c1"])

    # Other's own upload of the same bytes is its own copy.
    assert upload_bundle(platform, runtime, other.id, data, "olga").tenant_id == other.id

    assert [c.name for c in platform.deployments.active_circuits(acme.id, "production")] == ["scorer"]
    assert platform.executions.get_execution(acme.id, "ex-acme-1") is not None
    assert platform.webhooks.last_seen(acme.id, "production", "Contact", ["c1"]) == {
        "c1": {"Id": "c1", "Email": "secret@acme"}
    }
    assert [k.revoked_at for k in platform.tenants.list_api_keys(acme.id)] == [None]
    assert platform.tenants.authenticate("cs_" + key.id + "_guess") is None


def test_webhook_tokens_belong_to_one_tenant_environment(platform: Platform) -> None:
    acme, other = platform.tenants.create_tenant("Acme"), platform.tenants.create_tenant("Other")
    token = platform.tenants.issue_webhook_token(acme.id, "dev")
    assert token is not None and platform.tenants.resolve_webhook_token(token) == (acme.id, "dev")
    assert platform.tenants.issue_webhook_token(other.id, "dev") not in (token, None)
    with pytest.raises(NotFound):
        platform.tenants.issue_webhook_token("no-such-tenant", "dev")
    with pytest.raises(NotFound):
        platform.tenants.rotate_webhook_token("no-such-tenant", "dev")
    with pytest.raises(Rejected):
        platform.tenants.issue_webhook_token(acme.id, "../dev")
