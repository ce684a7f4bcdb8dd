"""Workers killed for real: a SIGKILLed worker process's jobs run again and commit exactly once; on
PostgreSQL, workers outlive a restart of the database server (a private cluster) and finish.

The worker is ``tests/jobs/chaos_worker.py`` in a subprocess; effects are counted in a table
with no unique constraint, so a second commit would show as a second row.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
import sqlalchemy as sa

from circuit_host.jobs import JobQueue, JobRequest, JobState, RetryPolicy

from ..private_postgres import PrivateCluster
from .chaos_worker import EFFECTS, create_effects
from .conftest import open_queue

ROOT = Path(__file__).resolve().parents[2]
BACKENDS = pytest.mark.parametrize("database_url", ["embedded", "fleet"], indirect=True)


@pytest.fixture
def backend(request: pytest.FixtureRequest) -> str:
    return str(request.node.callspec.params["database_url"])


@pytest.fixture
def queue(backend: str, database_url: str) -> Iterator[JobQueue]:
    opened = open_queue(backend, database_url)
    create_effects(opened)
    yield opened
    opened.close()


@pytest.fixture
def start_worker(backend: str, database_url: str, tmp_path: Path) -> Iterator[Callable[[], subprocess.Popen[str]]]:
    started: list[subprocess.Popen[str]] = []

    def start() -> subprocess.Popen[str]:
        started.append(spawn(backend, database_url, tmp_path, len(started)))
        return started[-1]

    yield start
    for process in started:
        if process.poll() is None:
            process.kill()
        process.wait()


def spawn(backend: str, url: str, markers: Path, number: int = 0) -> subprocess.Popen[str]:
    """A chaos worker process, once it says it is ready (its output goes to a file: no pipe to fill)."""
    output = markers / f"worker-{number}.log"
    with output.open("w") as sink:
        process = subprocess.Popen(
            [sys.executable, "-m", "tests.jobs.chaos_worker", backend, url, str(markers)],
            cwd=ROOT,
            stdout=sink,
            stderr=subprocess.STDOUT,
            text=True,
            env={**os.environ, "PYTHONPATH": str(ROOT)},
        )
    wait_for(lambda: "ready" in output.read_text().splitlines() or process.poll() is not None, timeout=60)
    assert process.poll() is None, output.read_text()
    return process


def wait_for(check: Callable[[], bool], timeout: float = 60.0) -> None:
    deadline = time.monotonic() + timeout
    while not check():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.1)


def effects(queue: JobQueue) -> list[tuple[int, int]]:
    engine: sa.Engine = queue.engine  # type: ignore[attr-defined]
    with engine.connect() as conn:
        return [tuple(r) for r in conn.exec_driver_sql(f"SELECT job_id, attempt FROM {EFFECTS} ORDER BY job_id")]  # type: ignore[misc]


@BACKENDS
def test_a_worker_killed_mid_job_has_its_jobs_rerun_and_committed_exactly_once(
    queue: JobQueue, start_worker: Callable[[], subprocess.Popen[str]], tmp_path: Path
) -> None:
    jobs = [
        queue.enqueue(JobRequest("chaos.commit", {"hang": hang}, retry=RetryPolicy(max_attempts=5)))
        for hang in ("before_commit", "before_commit", "after_commit", "after_commit")
    ]
    ids = [j.id for j in jobs if j is not None]
    first = start_worker()
    wait_for(lambda: all((tmp_path / f"{i}.0.started").exists() for i in ids))
    wait_for(lambda: all((tmp_path / f"{i}.0.committed").exists() for i in ids[2:]))
    first.send_signal(signal.SIGKILL)
    first.wait()
    committed_before_the_kill = effects(queue)
    assert committed_before_the_kill == [(ids[2], 0), (ids[3], 0)]

    start_worker()
    wait_for(lambda: all((found := queue.get(i)) is not None and found.state == JobState.SUCCEEDED for i in ids))
    assert sorted(effects(queue)) == sorted([(ids[0], 1), (ids[1], 1), (ids[2], 0), (ids[3], 0)])  # once each
    for job_id in ids[:2]:
        rerun = queue.get(job_id)
        assert rerun is not None and rerun.attempts == 2 and "heartbeat" in (rerun.last_error or "")


def test_fleet_workers_survive_a_postgresql_restart_and_commit_each_job_once(
    private_postgres: PrivateCluster, tmp_path: Path
) -> None:
    """PostgreSQL stopped (fast: every connection cut, open transactions rolled back) and started
    again mid-run, on a cluster of this test's own: the same two worker processes reconnect by
    themselves and finish every job, each committed once."""
    url = private_postgres.create_database("chaos")
    queue = open_queue("fleet", url)
    create_effects(queue)
    workers = [spawn("fleet", url, tmp_path, n) for n in range(2)]
    try:
        ids = []
        for _ in range(24):
            job = queue.enqueue(JobRequest("chaos.commit", {"work_s": 0.3}, retry=RetryPolicy(max_attempts=10)))
            assert job is not None
            ids.append(job.id)
        wait_for(lambda: len(list(tmp_path.glob("*.committed"))) >= 3)
        private_postgres.restart(down_s=2.0)
        assert len(list(tmp_path.glob("*.committed"))) < len(ids)  # the restart came mid-run
        wait_for(
            lambda: all((found := queue.get(i)) is not None and found.state == JobState.SUCCEEDED for i in ids),
            timeout=120,
        )
        assert sorted(job_id for job_id, _ in effects(queue)) == sorted(ids)  # each committed once
        assert [worker.poll() for worker in workers] == [None, None]  # the same processes, reconnected
    finally:
        for worker in workers:
            worker.kill()
            worker.wait()
        queue.close()
