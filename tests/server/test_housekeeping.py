"""Executions older than the tenant's retention are purged by the server itself, as an hourly job."""

from __future__ import annotations

import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

from circuit_host.jobs import JobRequest, JobState
from circuit_host.platform import ExecutionEntry
from circuit_host.server import ServerSettings
from circuit_host.server.server_jobs import RETENTION
from circuit_host.server.state import ServerState


def entry(tenant_id: str, execution_id: str, age: timedelta) -> ExecutionEntry:
    return ExecutionEntry(
        id=execution_id,
        tenant_id=tenant_id,
        env="production",
        circuit="c",
        version="c@1.0.0",
        trigger="api:Contact.insert",
        status="ok",
        started_at=datetime.now(UTC) - age,
        duration_ms=1.0,
    )


def test_the_retention_job_purges_only_what_is_past_retention(tmp_path: Path) -> None:
    state = ServerState(ServerSettings(data_dir=tmp_path))
    try:
        tenant = state.platform.tenants.create_tenant("acme")
        state.platform.tenants.update_settings(tenant.id, {"execution_retention_days": 7})
        state.platform.executions.save_execution(entry(tenant.id, "old", timedelta(days=8)))
        state.platform.executions.save_execution(entry(tenant.id, "recent", timedelta(days=6)))
        assert RETENTION in state.jobs.schedules  # hourly; here its job is enqueued at once
        job = state.jobs.queue.enqueue(JobRequest(RETENTION.kind))
        assert job is not None
        state.jobs.start()
        deadline = time.monotonic() + 10
        while state.platform.executions.get_execution(tenant.id, "old") is not None:
            assert time.monotonic() < deadline, "the old execution was never purged"
            time.sleep(0.05)
        assert state.platform.executions.get_execution(tenant.id, "recent") is not None
        while (done := state.jobs.queue.get(job.id)) is None or done.state != JobState.SUCCEEDED:
            assert time.monotonic() < deadline, "the retention job did not finish"
            time.sleep(0.05)
    finally:
        state.close()


def test_a_gate_refusal_is_bounded_whatever_the_tests_print() -> None:
    """A refused deploy stored 6.5 MB of refusal text per request (issue 11, item 6)."""
    from circuit_host.server.state import MAX_GATE_LINE, MAX_GATE_LINES, gate_refusal

    failed = [f"test_{i}: fail: " + "x" * 100_000 for i in range(500)]
    text = gate_refusal("scorer 1.0.0", failed, 500, 12.5)
    assert len(text) < (MAX_GATE_LINE + 2) * MAX_GATE_LINES + 200
    assert text.startswith("scorer 1.0.0: 500 of 500 tests failed (coverage 12.5%): test_0: fail: ")
    assert text.endswith(f"; and {500 - MAX_GATE_LINES} more")
