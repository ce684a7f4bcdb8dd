"""Deploys, promotions, rollbacks and undeploys: one transaction each, audited, seen by every process."""

from __future__ import annotations

import itertools
import threading
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta

import pytest

from circuit_host.errors import Rejected
from circuit_host.platform import Conflict, NotFound, Platform, Tenant
from circuit_host.sandbox.runtime import Runtime
from circuit_host.server.deploy_path import upload_bundle

MakeBundle = Callable[..., bytes]


def upload(platform: Platform, tenant: Tenant, runtime: Runtime, make_bundle: MakeBundle, *versions: str) -> None:
    for version in versions:
        upload_bundle(platform, runtime, tenant.id, make_bundle(version=version), "alice")


def active(platform: Platform, tenant: Tenant, env: str) -> dict[str, str]:
    return {c.name: c.version for c in platform.deployments.active_circuits(tenant.id, env)}


def test_deploy_promote_rollback_with_audit(
    platform: Platform, tenant: Tenant, runtime: Runtime, make_bundle: MakeBundle
) -> None:
    upload(platform, tenant, runtime, make_bundle, "1.0.0", "1.1.0", "2.0.0")
    assert active(platform, tenant, "staging") == {}

    first = platform.deployments.deploy(tenant.id, "staging", "scorer", "1.0.0", "alice")
    assert first is not None
    assert (first.action, first.env, first.circuit, first.from_version, first.to_version, first.actor) == (
        "deploy",
        "staging",
        "scorer",
        None,
        "1.0.0",
        "alice",
    )
    assert platform.deployments.deploy(tenant.id, "staging", "scorer", "1.0.0", "alice") is None  # already active
    platform.deployments.deploy(tenant.id, "staging", "scorer", "1.1.0", "alice")
    platform.deployments.deploy(tenant.id, "staging", "scorer", "2.0.0", "bob")
    circuits = platform.deployments.active_circuits(tenant.id, "staging")
    assert [(c.name, c.version, c.deployed_by) for c in circuits] == [("scorer", "2.0.0", "bob")]
    assert circuits[0].manifest.version == "2.0.0"

    promoted = platform.deployments.promote(tenant.id, "staging", "production", "carol")
    assert [(e.action, e.env, e.from_version, e.to_version) for e in promoted] == [
        ("promote", "production", None, "2.0.0")
    ]
    assert platform.deployments.promote(tenant.id, "staging", "production", "carol") == []  # nothing changes
    assert active(platform, tenant, "production") == {"scorer": "2.0.0"}

    back = platform.deployments.rollback(tenant.id, "staging", "scorer", "dave")
    assert (back.action, back.from_version, back.to_version) == ("rollback", "2.0.0", "1.1.0")
    assert (
        platform.deployments.rollback(tenant.id, "staging", "scorer", "dave").to_version == "1.0.0"
    )  # walks back the history
    with pytest.raises(Conflict, match=r"no version of scorer was active in staging before 1.0.0"):
        platform.deployments.rollback(tenant.id, "staging", "scorer", "dave")
    assert (
        platform.deployments.rollback(tenant.id, "staging", "scorer", "dave", to_version="2.0.0").to_version == "2.0.0"
    )
    assert active(platform, tenant, "production") == {"scorer": "2.0.0"}  # environments are independent

    log = platform.audit.audit_log(tenant.id, limit=100)
    assert [(e.action, e.env, e.from_version, e.to_version) for e in log[:4]] == [
        ("rollback", "staging", "1.0.0", "2.0.0"),
        ("rollback", "staging", "1.1.0", "1.0.0"),
        ("rollback", "staging", "2.0.0", "1.1.0"),
        ("promote", "production", None, "2.0.0"),
    ]
    assert [e.actor for e in platform.audit.audit_log(tenant.id, limit=2)] == ["dave", "dave"]
    assert all(e.env == "production" for e in platform.audit.audit_log(tenant.id, env="production"))
    ids = [e.id for e in log]
    assert ids == sorted(ids, reverse=True)


def test_promote_one_circuit_and_undeploy(
    platform: Platform, tenant: Tenant, runtime: Runtime, make_bundle: MakeBundle
) -> None:
    upload_bundle(platform, runtime, tenant.id, make_bundle("alpha"), "a")
    upload_bundle(platform, runtime, tenant.id, make_bundle("beta"), "a")
    platform.deployments.deploy(tenant.id, "dev", "alpha", "1.0.0", "a")
    platform.deployments.deploy(tenant.id, "dev", "beta", "1.0.0", "a")
    platform.deployments.promote(tenant.id, "dev", "staging", "a", name="beta")
    assert active(platform, tenant, "staging") == {"beta": "1.0.0"}
    with pytest.raises(NotFound, match=r"circuit gamma is not active in dev"):
        platform.deployments.promote(tenant.id, "dev", "staging", "a", name="gamma")
    with pytest.raises(NotFound, match=r"no circuit is active in production"):
        platform.deployments.promote(tenant.id, "production", "staging", "a")
    with pytest.raises(Rejected, match=r"two different environments"):
        platform.deployments.promote(tenant.id, "dev", "dev", "a")
    entry = platform.deployments.undeploy(tenant.id, "dev", "alpha", "a")
    assert (entry.action, entry.from_version, entry.to_version) == ("undeploy", "1.0.0", None)
    assert active(platform, tenant, "dev") == {"beta": "1.0.0"}


def test_deploy_errors(platform: Platform, tenant: Tenant, runtime: Runtime, make_bundle: MakeBundle) -> None:
    with pytest.raises(NotFound, match=r"bundle scorer 1.0.0 does not exist"):
        platform.deployments.deploy(tenant.id, "dev", "scorer", "1.0.0", "a")
    with pytest.raises(Rejected, match=r"unknown environment"):
        platform.deployments.deploy(tenant.id, "qa", "scorer", "1.0.0", "a")
    with pytest.raises(NotFound, match=r"circuit scorer is not active in dev"):
        platform.deployments.rollback(tenant.id, "dev", "scorer", "a")
    platform.tenants.update_settings(tenant.id, {"max_limits": {"queries": 1000}})
    upload_bundle(platform, runtime, tenant.id, make_bundle(extra="[limits]\nqueries = 500\n"), "a")
    platform.tenants.update_settings(tenant.id, {"max_limits": {"queries": 100}})  # the ceiling was lowered since
    with pytest.raises(Rejected, match=r"limits\.queries: 500 is above the tenant's maximum of 100"):
        platform.deployments.deploy(tenant.id, "dev", "scorer", "1.0.0", "a")


def test_a_rollback_is_seen_by_another_process_at_once(
    open_platform: Callable[..., Platform], runtime: Runtime, make_bundle: MakeBundle
) -> None:
    server, operator = open_platform(), open_platform()
    tenant = operator.tenants.create_tenant("Shared")
    upload(operator, tenant, runtime, make_bundle, "1.0.0", "2.0.0")
    operator.deployments.deploy(tenant.id, "production", "scorer", "1.0.0", "ops")
    operator.deployments.deploy(tenant.id, "production", "scorer", "2.0.0", "ops")
    assert active(server, tenant, "production") == {"scorer": "2.0.0"}
    generation = server.deployments.generation(tenant.id, "production")

    started = time.perf_counter()
    operator.deployments.rollback(tenant.id, "production", "scorer", "ops")
    assert active(server, tenant, "production") == {"scorer": "1.0.0"}
    assert time.perf_counter() - started < 1.0
    assert server.deployments.generation(tenant.id, "production") == generation + 1


def test_active_circuits_is_cached_by_generation(
    platform: Platform, tenant: Tenant, runtime: Runtime, make_bundle: MakeBundle
) -> None:
    upload(platform, tenant, runtime, make_bundle, "1.0.0")
    platform.deployments.deploy(tenant.id, "dev", "scorer", "1.0.0", "a")
    first = platform.deployments.active_circuits(tenant.id, "dev")
    again = platform.deployments.active_circuits(tenant.id, "dev")
    assert again == first and again[0] is first[0]  # no reload while the generation is unchanged
    started = time.perf_counter()
    for _ in range(100):
        platform.deployments.active_circuits(tenant.id, "dev")
    assert (time.perf_counter() - started) / 100 < 0.01


def test_concurrent_deploys_serialise(
    open_platform: Callable[..., Platform], runtime: Runtime, make_bundle: MakeBundle
) -> None:
    one, two = open_platform(), open_platform()
    tenant = one.tenants.create_tenant("Race")
    upload(one, tenant, runtime, make_bundle, *[f"1.0.{i}" for i in range(6)])
    errors: list[BaseException] = []

    def deploy_all(platform: Platform, versions: range) -> None:
        try:
            for i in versions:
                platform.deployments.deploy(tenant.id, "dev", "scorer", f"1.0.{i}", "racer")
        except BaseException as exc:  # pragma: no cover - reported below
            errors.append(exc)

    threads = [
        threading.Thread(target=deploy_all, args=(one, range(0, 6, 2))),
        threading.Thread(target=deploy_all, args=(two, range(1, 6, 2))),
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert errors == []
    deploys = [e for e in one.audit.audit_log(tenant.id) if e.action == "deploy"]
    assert len(deploys) == 6
    # Each deploy saw the one before it: the from_version chain is unbroken.
    chain = list(reversed(deploys))
    assert chain[0].from_version is None
    assert all(later.from_version == earlier.to_version for earlier, later in itertools.pairwise(chain))
    assert active(two, tenant, "dev") == {"scorer": chain[-1].to_version}


def test_old_gate_runs_are_purged_but_the_active_versions_pass_is_kept(
    open_platform: Callable[..., Platform], runtime: Runtime, make_bundle: MakeBundle
) -> None:
    """Gate runs were never purged, and a refused deploy can be repeated at will (issue 11, item 6)."""
    now = [datetime(2026, 1, 1, tzinfo=UTC)]
    platform = open_platform(clock=lambda: now[0])
    tenant = platform.tenants.create_tenant("Gated")
    upload(platform, tenant, runtime, make_bundle, "1.0.0", "2.0.0")
    for _ in range(50):
        platform.deployments.record_gate_run(tenant.id, "production", "scorer", "2.0.0", "eve", False, None, "x" * 500)
    platform.deployments.deploy(tenant.id, "production", "scorer", "1.0.0", "alice")
    platform.deployments.record_gate_run(tenant.id, "production", "scorer", "1.0.0", "alice", True, 90.0, "ok")
    now[0] += timedelta(days=31)
    assert platform.deployments.purge_expired_gate_runs() == 50
    kept = platform.deployments.gate_runs(tenant.id)
    assert [(run.version, run.passed) for run in kept] == [("1.0.0", True)]
    assert platform.deployments.passed_gate(tenant.id, "production", "scorer", "1.0.0")
