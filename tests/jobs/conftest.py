"""Job-queue fixtures: each backend on a database of the test's own."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
import sqlalchemy as sa

from circuit_host.jobs import EmbeddedJobQueue, JobQueue
from circuit_host.jobs.fleet_queue import FleetJobQueue
from tests.conftest import require_postgres


@pytest.fixture
def postgres_database() -> Iterator[str]:
    """The URL of a fresh PostgreSQL database, dropped afterwards (Procrastinate's tables have fixed names)."""
    server = sa.engine.make_url(require_postgres())
    name = f"circuit_jobs_{uuid.uuid4().hex[:12]}"
    admin = sa.create_engine(server, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.exec_driver_sql(f'CREATE DATABASE "{name}"')
    try:
        yield server.set(database=name).render_as_string(hide_password=False)
    finally:
        with admin.connect() as conn:
            conn.exec_driver_sql(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        admin.dispose()


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
