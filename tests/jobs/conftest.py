"""Job-queue fixtures: each backend on a database of the test's own."""

from __future__ import annotations

from pathlib import Path

import pytest

from circuit_host.jobs import EmbeddedJobQueue, JobQueue
from circuit_host.jobs.fleet_queue import FleetJobQueue


@pytest.fixture
def database_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """The queue's database for the backend the test is parametrised with."""
    if request.param == "embedded":
        return str(tmp_path / "platform.sqlite3")
    return str(request.getfixturevalue("postgres_database"))


def open_queue(backend: str, url: str) -> JobQueue:
    """Fast timings, so lease expiry and stalled workers show within seconds."""
    if backend == "embedded":
        return EmbeddedJobQueue(url, lease_s=1.5, poll_s=0.05)
    return FleetJobQueue(url, heartbeat_s=0.5, stalled_after_s=2.0, poll_s=0.2)
