"""Figures over stored executions (the dashboard's overview): exact counts per time bucket and
status, nearest-rank percentiles, governor headroom, one tenant only; on SQLite and PostgreSQL."""

from __future__ import annotations

import uuid
from collections.abc import Callable
from datetime import UTC, datetime, timedelta

from circuit_host.platform import ExecutionEntry, Platform
from circuit_host.platform.execution_stats import ExecutionStats

NOW = datetime(2026, 7, 1, 13, 0, 30, tzinfo=UTC)


def entry(tenant_id: str, ago: timedelta, **kw: object) -> ExecutionEntry:
    values: dict[str, object] = {
        "id": uuid.uuid4().hex,
        "tenant_id": tenant_id,
        "env": "production",
        "circuit": "scorer",
        "version": "scorer@1.0.0",
        "trigger": "api:Contact.insert",
        "status": "ok",
        "started_at": NOW - ago,
        "duration_ms": 1.0,
        "usage": {"queries": {"used": 1, "limit": 100}, "dml_rows": {"used": 0, "limit": 10_000}},
    }
    values.update(kw)
    return ExecutionEntry(**values)  # type: ignore[arg-type]


def test_counts_percentiles_and_headroom_per_environment_and_circuit(open_platform: Callable[..., Platform]) -> None:
    platform = open_platform(clock=lambda: NOW)
    tenant = platform.tenants.create_tenant("Stats Corp").id
    other = platform.tenants.create_tenant("Other Corp").id
    save = platform.executions.save_execution
    # 100 production runs of 1..100 ms over the last 50 minutes, two a minute: 90 ok, 7 error, 3 over a limit.
    for n in range(1, 101):
        status = "error" if n % 14 == 0 else "limit_exceeded" if n in (33, 66, 99) else "ok"
        save(entry(tenant, timedelta(minutes=n // 2, seconds=1), duration_ms=float(n), status=status))
    save(entry(tenant, timedelta(minutes=5), env="staging", usage={"queries": {"used": 95, "limit": 100}}))
    save(entry(tenant, timedelta(hours=3), env="staging", duration_ms=500.0))  # in the day, not the hour
    save(entry(other, timedelta(minutes=1), circuit="theirs", duration_ms=9_999.0))  # another tenant's

    stats = ExecutionStats(platform.database)
    hour = stats.window(tenant, timedelta(hours=1), 60)
    assert [(c.env, c.circuit) for c in hour.circuits] == [("production", "scorer"), ("staging", "scorer")]
    production, staging = hour.circuits
    assert production.by_status == {"ok": 90, "error": 7, "limit_exceeded": 3}
    assert production.executions == 100 and production.failed == 10 and production.error_rate == 0.1
    assert (production.p50_ms, production.p95_ms, production.p99_ms) == (50.0, 95.0, 99.0)
    assert production.headroom == {"queries": 0.01, "dml_rows": 0.0}
    assert staging.executions == 1 and staging.headroom["queries"] == 0.95
    assert hour.since == NOW - timedelta(hours=1) and hour.until == NOW and not hour.sampled

    in_production = [b for b in hour.buckets if b.env == "production"]
    assert sum(b.ok for b in in_production) == 90 and sum(b.failed for b in in_production) == 10
    assert all(b.start.second == 0 and b.start.tzinfo is not None for b in in_production)
    by_start = {b.start: b.ok + b.failed for b in in_production}
    assert by_start[datetime(2026, 7, 1, 13, 0, tzinfo=UTC)] == 1  # n = 1: at 13:00:29
    assert by_start[datetime(2026, 7, 1, 12, 59, tzinfo=UTC)] == 2  # n = 2, 3: at 12:59:29

    day = stats.window(tenant, timedelta(days=1), 900)
    (staging_day,) = [c for c in day.circuits if c.env == "staging"]
    assert staging_day.executions == 2 and staging_day.p99_ms == 500.0
    assert {b.start.minute for b in day.buckets} <= {0, 15, 30, 45}


def test_percentiles_come_from_the_newest_executions_when_the_window_holds_more(
    open_platform: Callable[..., Platform],
) -> None:
    platform = open_platform(clock=lambda: NOW)
    tenant = platform.tenants.create_tenant("Busy Corp").id
    for n in range(1, 21):  # the newest ten took 1 ms, the older ten 100 ms
        platform.executions.save_execution(entry(tenant, timedelta(minutes=n), duration_ms=1.0 if n <= 10 else 100.0))
    (figures,) = ExecutionStats(platform.database, sample_limit=10).window(tenant, timedelta(hours=1), 60).circuits
    assert figures.executions == 20  # counted exactly
    assert figures.p99_ms == 1.0  # over the newest ten


def test_an_execution_keeps_its_timeline_and_lists_leave_it_out(open_platform: Callable[..., Platform]) -> None:
    platform = open_platform(clock=lambda: NOW)
    tenant = platform.tenants.create_tenant("Timeline Corp").id
    step = {"kind": "dml", "name": "INSERT Contact", "start_ms": 0.1, "duration_ms": 2.5, "depth": 0, "outcome": "ok"}
    steps = [step]
    saved = entry(tenant, timedelta(minutes=1), timeline=steps)
    platform.executions.save_execution(saved)
    assert platform.executions.get_execution(tenant, saved.id) == saved
    assert platform.executions.list_executions(tenant)[0].timeline == []
    assert platform.executions.list_executions(tenant, include_log=True)[0].timeline == steps
