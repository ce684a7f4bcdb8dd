"""Bundles are stored as the deploy path validated them: content-addressed, immutable, exactly as uploaded."""

from __future__ import annotations

import ast
from collections.abc import Callable
from pathlib import Path

import pytest

import circuit_host.platform
from circuit_host.bundles import read_bundle
from circuit_host.errors import Rejected
from circuit_host.platform import Conflict, NotFound, Platform, Tenant
from circuit_host.sandbox.runtime import Runtime
from circuit_host.server.deploy_path import upload_bundle

MakeBundle = Callable[..., bytes]


def test_storing_is_idempotent_and_content_addressed(
    platform: Platform, tenant: Tenant, runtime: Runtime, make_bundle: MakeBundle
) -> None:
    data = make_bundle()
    first = upload_bundle(platform, runtime, tenant.id, data, "alice")
    again = upload_bundle(platform, runtime, tenant.id, data, "bob")
    assert again == first
    assert (first.name, first.version, first.size, first.uploaded_by) == ("scorer", "1.0.0", len(data), "alice")
    assert platform.bundles.bundle_bytes(tenant.id, first.sha256) == data
    assert platform.bundles.get_bundle(tenant.id, "scorer", "1.0.0") == first
    assert platform.bundles.get_bundle(tenant.id, "scorer", "9.9.9") is None
    assert [b.sha256 for b in platform.bundles.list_bundles(tenant.id)] == [first.sha256]
    assert platform.bundles.bundle_wasm(tenant.id, first.sha256).startswith(b"\0asm")
    assert first.manifest.triggers[0].object == "Contact"
    assert [(e.action, e.to_version) for e in platform.audit.audit_log(tenant.id)] == [("upload", "1.0.0")]


def test_a_different_bundle_under_an_existing_version_is_a_conflict(
    platform: Platform, tenant: Tenant, runtime: Runtime, make_bundle: MakeBundle
) -> None:
    upload_bundle(platform, runtime, tenant.id, make_bundle(), "alice")
    changed = make_bundle(extra='description = "changed"\n')
    with pytest.raises(Conflict, match=r"scorer 1.0.0 already exists with different content"):
        upload_bundle(platform, runtime, tenant.id, changed, "alice")


def test_invalid_bundles_are_not_stored(
    platform: Platform, tenant: Tenant, runtime: Runtime, make_bundle: MakeBundle
) -> None:
    with pytest.raises(Rejected, match=r"not a valid zip"):
        upload_bundle(platform, runtime, tenant.id, b"junk", "alice")
    with pytest.raises(Rejected, match=r"limits\.queries: 500 is above the tenant's maximum"):
        upload_bundle(platform, runtime, tenant.id, make_bundle(extra="[limits]\nqueries = 500\n"), "alice")
    platform.tenants.update_settings(tenant.id, {"max_limits": {"queries": 1000}})
    upload_bundle(platform, runtime, tenant.id, make_bundle(extra="[limits]\nqueries = 500\n"), "alice")
    assert len(platform.bundles.list_bundles(tenant.id)) == 1
    with pytest.raises(NotFound):
        upload_bundle(platform, runtime, "no-such-tenant", make_bundle(version="2.0.0"), "alice")


def test_the_store_keeps_only_the_bytes_that_were_validated(
    platform: Platform, tenant: Tenant, runtime: Runtime, make_bundle: MakeBundle
) -> None:
    validated = read_bundle(make_bundle(), runtime)
    with pytest.raises(Rejected, match=r"not the one being stored"):
        platform.bundles.store_bundle(tenant.id, make_bundle(version="2.0.0"), validated, "alice")
    assert platform.bundles.list_bundles(tenant.id) == []


def test_the_platform_never_loads_a_module() -> None:
    """Validating and compiling wasm is the deploy path's job: no platform module imports the sandbox."""
    folder = Path(circuit_host.platform.__file__).parent
    for path in folder.glob("*.py"):
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.ImportFrom):
                names = [node.module or ""] + [alias.name for alias in node.names]
                assert not any("sandbox" in n or n in ("read_bundle", "Runtime") for n in names), path.name
