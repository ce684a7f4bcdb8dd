"""Stored executions: filters, paging, retention."""

from __future__ import annotations

import uuid
from collections.abc import Callable
from datetime import UTC, datetime, timedelta

import pytest

from circuit_host.platform import Conflict, ExecutionEntry, NotFound, Platform, Tenant

T0 = datetime(2026, 7, 1, 12, 0, tzinfo=UTC)


def execution(tenant: Tenant, minute: int, **kw: object) -> ExecutionEntry:
    values: dict[str, object] = {
        "id": f"ex-{minute:03d}-{uuid.uuid4().hex[:6]}",
        "tenant_id": tenant.id,
        "env": "production",
        "circuit": "scorer",
        "version": "1.0.0",
        "trigger": "Contact.after_insert",
        "status": "ok",
        "started_at": T0 + timedelta(minutes=minute),
        "duration_ms": 1.5,
        "usage": {"fuel": {"used": 10, "limit": 100}},
        "debug_log": "EXECUTION_START\nEXECUTION_END",
    }
    values.update(kw)
    return ExecutionEntry(**values)  # type: ignore[arg-type]


def test_executions_round_trip(platform: Platform, tenant: Tenant) -> None:
    entry = execution(tenant, 0, status="error", error="boom")
    platform.executions.save_execution(entry)
    assert platform.executions.get_execution(tenant.id, entry.id) == entry
    assert platform.executions.get_execution(tenant.id, "nope") is None
    listed = platform.executions.list_executions(tenant.id)
    assert [e.id for e in listed] == [entry.id]
    assert listed[0].debug_log == ""  # lists leave the log out unless asked
    assert platform.executions.list_executions(tenant.id, include_log=True)[0] == entry
    with pytest.raises(Conflict):
        platform.executions.save_execution(entry)


def test_execution_filters_and_paging(platform: Platform, tenant: Tenant) -> None:
    entries = [
        execution(tenant, 0),
        execution(tenant, 1, status="error"),
        execution(tenant, 2, circuit="other"),
        execution(tenant, 3, env="staging"),
        execution(tenant, 4, status="limit_exceeded"),
        execution(tenant, 5),
    ]
    for entry in entries:
        platform.executions.save_execution(entry)

    def ids(**kw: object) -> list[str]:
        return [e.id for e in platform.executions.list_executions(tenant.id, **kw)]  # type: ignore[arg-type]

    newest_first = [e.id for e in reversed(entries)]
    assert ids() == newest_first
    assert ids(env="staging") == [entries[3].id]
    assert ids(circuit="other") == [entries[2].id]
    assert ids(status="error") == [entries[1].id]
    assert ids(since=T0 + timedelta(minutes=4)) == newest_first[:2]
    assert ids(until=T0 + timedelta(minutes=1)) == [entries[0].id]
    assert ids(since=T0 + timedelta(minutes=1), until=T0 + timedelta(minutes=3), circuit="scorer") == [entries[1].id]

    page = ids(limit=2)
    assert page == newest_first[:2]
    assert ids(limit=2, before_id=page[-1]) == newest_first[2:4]
    assert ids(limit=10, before_id=newest_first[-1]) == []
    with pytest.raises(NotFound):
        ids(before_id="nope")


def test_paging_is_stable_for_equal_start_times(platform: Platform, tenant: Tenant) -> None:
    same = [execution(tenant, 0, id=f"ex-same-{i}") for i in range(5)]
    for entry in same:
        platform.executions.save_execution(entry)
    seen: list[str] = []
    cursor = None
    while True:
        page = platform.executions.list_executions(tenant.id, limit=2, before_id=cursor)
        if not page:
            break
        seen += [e.id for e in page]
        cursor = page[-1].id
    assert seen == sorted((e.id for e in same), reverse=True)


def test_purge_by_age_and_by_retention(open_platform: Callable[..., Platform]) -> None:
    platform = open_platform(clock=lambda: T0 + timedelta(days=40))
    tenant = platform.tenants.create_tenant("Retention")
    for minute in (0, 1):
        platform.executions.save_execution(execution(tenant, minute))
    platform.executions.save_execution(execution(tenant, 60 * 24 * 20))  # day 20: within 30 days of day 40
    assert platform.executions.purge_executions(tenant.id, T0 + timedelta(minutes=1)) == 1
    assert platform.executions.purge_expired_executions() >= 1
    assert [e.started_at for e in platform.executions.list_executions(tenant.id)] == [T0 + timedelta(days=20)]


def test_a_quota_of_executions_purges_the_oldest_of_that_tenant_only(platform: Platform, tenant: Tenant) -> None:
    other = platform.tenants.create_tenant("Neighbour")
    mine = [execution(tenant, minute) for minute in range(5)]
    ties = [execution(tenant, 9, id=f"ex-tie-{i}") for i in range(2)]  # same start: the id orders them
    theirs = [execution(other, minute) for minute in range(5)]
    for entry in (*mine, *ties, *theirs):
        platform.executions.save_execution(entry)
    assert platform.executions.purge_over_quota(tenant.id, 3, 10**9) == 4
    assert [e.id for e in platform.executions.list_executions(tenant.id)] == ["ex-tie-1", "ex-tie-0", mine[4].id]
    assert len(platform.executions.list_executions(other.id)) == 5
    assert platform.executions.purge_over_quota(tenant.id, 3, 10**9) == 0


def test_a_quota_of_log_bytes_counts_stored_bytes_newest_first(platform: Platform, tenant: Tenant) -> None:
    other = platform.tenants.create_tenant("Neighbour")
    log = "é" * 500  # 1,000 bytes, 500 characters
    mine = [execution(tenant, minute, debug_log=log) for minute in range(4)]
    theirs = [execution(other, minute, debug_log=log * 10) for minute in range(2)]
    for entry in (*mine, *theirs):
        platform.executions.save_execution(entry)
    assert platform.executions.purge_over_quota(tenant.id, 100, 2_500) == 2
    assert [e.id for e in platform.executions.list_executions(tenant.id)] == [mine[3].id, mine[2].id]
    assert len(platform.executions.list_executions(other.id)) == 2


def test_a_quota_of_log_bytes_counts_timelines_too(platform: Platform, tenant: Tenant) -> None:
    step = {"kind": "query", "name": "x" * 300, "start_ms": 0.0, "duration_ms": 1.0, "depth": 0, "outcome": "ok"}
    timed = [execution(tenant, minute, debug_log="", timeline=[step] * 5) for minute in range(3)]  # ~2 KB each
    for entry in timed:
        platform.executions.save_execution(entry)
    assert platform.executions.purge_over_quota(tenant.id, 100, 3_000) == 2
    assert [e.id for e in platform.executions.list_executions(tenant.id)] == [timed[2].id]


def test_housekeeping_applies_each_tenants_own_quotas(open_platform: Callable[..., Platform]) -> None:
    platform = open_platform(clock=lambda: T0 + timedelta(days=1))
    small = platform.tenants.create_tenant("Small")
    large = platform.tenants.create_tenant("Large")
    platform.tenants.update_settings(small.id, {"max_stored_executions": 2})
    for minute in range(4):
        platform.executions.save_execution(execution(small, minute))
        platform.executions.save_execution(execution(large, minute))
    assert platform.executions.purge_expired_executions() == 2
    assert [e.started_at for e in platform.executions.list_executions(small.id)] == [
        T0 + timedelta(minutes=3),
        T0 + timedelta(minutes=2),
    ]
    assert len(platform.executions.list_executions(large.id)) == 4
