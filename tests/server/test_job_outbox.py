"""The job outbox: a queueable job survives a process killed between the records commit and the enqueue.

``jobs.enqueue``'s jobs are written into the execution's records transaction (``circuitdb_job_outbox``)
and enqueued after it commits. A process SIGKILLed right after the commit, before the enqueue, leaves
them there; the relay that each worker runs at its start enqueues them under the same key, and the
job runs once.
"""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import textwrap
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from circuit_host.circuitdb import OutboxJob
from circuit_host.connectors.records import DmlOp
from circuit_host.jobs import JobFilter, JobState
from circuit_host.server import ServerSettings
from circuit_host.server.async_circuits import QUEUEABLE_KIND, RELAY_KIND, circuit_job
from circuit_host.server.state import ServerState
from tests.server.conftest import Tenant, serve
from tests.server.test_async_circuits import HOT
from tests.server.test_end_to_end import deploy

ROOT = Path(__file__).resolve().parents[2]

KILLED_AFTER_COMMIT = textwrap.dedent(
    """
    import json, os, signal, sys
    from pathlib import Path
    from circuit_host.connectors.records import DmlOp
    from circuit_host.server import ServerSettings
    from circuit_host.server.async_circuits import QueueSink
    from circuit_host.server.state import ServerState

    def die(sink, intents):  # the records and the job outbox have committed; the enqueue comes next
        os.kill(os.getpid(), signal.SIGKILL)

    QueueSink.enqueue_committed = die
    settings = ServerSettings(data_dir=Path(sys.argv[1]), db_url=sys.argv[4] or None, job_workers=0)
    state = ServerState(settings)
    state.apply_change(sys.argv[2], "dev", DmlOp.INSERT, "Contact", [json.loads(sys.argv[3])], "api:Contact.insert")
    print("not killed", flush=True)
    """
)


@dataclass(frozen=True)
class Deployed:
    data_dir: Path
    db_url: str | None  # None: embedded (SQLite files in data_dir); else the fleet's PostgreSQL
    tenant: Tenant

    def open(self) -> ServerState:
        return ServerState(ServerSettings(data_dir=self.data_dir, db_url=self.db_url, job_workers=0))

    def worker(self) -> list[str]:
        command = [sys.executable, "-m", "circuit_host.cli", "worker", "--data-dir", str(self.data_dir)]
        return [*command, "--concurrency", "1", *(["--db", self.db_url] if self.db_url else [])]


@pytest.fixture(params=["embedded", "fleet"])
def deployed(request: pytest.FixtureRequest, tmp_path: Path, vlpr_bundles: dict[str, Path]) -> Iterator[Deployed]:
    """A data directory (and, for the fleet, a PostgreSQL database) whose tenant has Virtual LPR 1.0.0
    in dev (its Contact trigger enqueues an enrichment job for a grade-A contact), and no process on it."""
    db_url = None if request.param == "embedded" else str(request.getfixturevalue("postgres_database"))
    settings = ServerSettings(data_dir=tmp_path / "data", db_url=db_url, job_workers=0)
    state = ServerState(settings)
    try:
        for live in serve(state, settings):
            tenant = live.tenant("acme")
            with tenant.client(live) as client:
                deploy(client, vlpr_bundles["1.0.0"], env="dev")
    finally:
        state.close()
    yield Deployed(settings.data_dir, db_url, tenant)


def test_a_job_committed_by_a_process_killed_before_the_enqueue_runs_once_after_restart(
    deployed: Deployed, tmp_path: Path
) -> None:
    tenant = deployed.tenant
    killed = subprocess.run(
        [
            sys.executable,
            "-c",
            KILLED_AFTER_COMMIT,
            str(deployed.data_dir),
            tenant.id,
            json.dumps(HOT),
            deployed.db_url or "",
        ],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert killed.returncode == -signal.SIGKILL, killed.stdout + killed.stderr

    state = deployed.open()
    try:
        store = state.store(tenant.id, "dev")
        [left] = store.outbox_jobs()  # committed with the records ...
        assert left.circuit == "virtual_lpr" and left.key.startswith("exec:") and left.key.endswith(":0")
        [contact] = store.begin().query("SELECT Id, LastName FROM Contact", {}, 10).records
        assert contact["LastName"] == HOT["LastName"]
        assert state.jobs.queue.list_jobs(JobFilter(kind=QUEUEABLE_KIND)) == []  # ... and never enqueued
    finally:
        state.close()

    log = tmp_path / "worker.log"
    with log.open("wb") as out:
        worker = subprocess.Popen(
            deployed.worker(),
            cwd=ROOT,
            stdout=out,
            stderr=subprocess.STDOUT,
        )
    state = deployed.open()
    try:
        deadline = time.monotonic() + 90
        while not [j for j in state.jobs.queue.list_jobs(JobFilter(kind=QUEUEABLE_KIND)) if j.state != JobState.TODO]:
            assert worker.poll() is None and time.monotonic() < deadline, log.read_text()[-3000:]
            time.sleep(0.1)
        deadline = time.monotonic() + 60
        while (job := state.jobs.queue.list_jobs(JobFilter(kind=QUEUEABLE_KIND))[0]).state != JobState.SUCCEEDED:
            assert job.state in (JobState.TODO, JobState.DOING), job
            assert time.monotonic() < deadline, log.read_text()[-3000:]
            time.sleep(0.1)
        worker.send_signal(signal.SIGTERM)
        assert worker.wait(timeout=60) == 0, log.read_text()[-3000:]

        assert job.key == left.key and job.payload == left.payload and job.tenant_id == tenant.id
        [relay] = state.jobs.queue.list_jobs(JobFilter(kind=RELAY_KIND))  # the pass at the worker's start
        assert relay.state == JobState.SUCCEEDED
        assert job.execution_id is not None
        execution = state.platform.executions.get_execution(tenant.id, job.execution_id)
        assert execution is not None and execution.status == "ok" and execution.trigger == f"job:{job.id}"
        store = state.store(tenant.id, "dev")
        assert store.outbox_jobs() == []
        assert state.async_circuits.relay_job_outbox() == 0
        assert len(state.jobs.queue.list_jobs(JobFilter(kind=QUEUEABLE_KIND))) == 1  # it ran once
    finally:
        if worker.poll() is None:
            worker.kill()
            worker.wait()
        state.close()


def test_relaying_a_job_that_was_enqueued_after_all_makes_no_second_job(deployed: Deployed) -> None:
    """The window the other way round: the enqueue happened, the outbox row's delete did not."""
    tenant = deployed.tenant
    state = deployed.open()
    try:
        store = state.store(tenant.id, "dev")
        payload = {"version": "1.0.0", "payload": {"contact_ids": []}, "depth": 1}
        job = OutboxJob("exec:0123456789abcdef:0", "virtual_lpr", payload)
        with store.begin() as transaction:
            transaction.add_outbox_jobs([job])
            transaction.commit()
        first = state.jobs.queue.enqueue(circuit_job(tenant.id, "dev", job))
        assert first is not None
        assert state.async_circuits.relay_job_outbox() == 1
        assert store.outbox_jobs() == []
        assert [j.id for j in state.jobs.queue.list_jobs(JobFilter(kind=QUEUEABLE_KIND))] == [first.id]
    finally:
        state.close()


def test_a_rolled_back_execution_leaves_nothing_in_the_job_outbox(deployed: Deployed) -> None:
    tenant = deployed.tenant
    state = deployed.open()
    try:
        refused = state.apply_change(tenant.id, "dev", DmlOp.INSERT, "Contact", [{"FirstName": "No"}], "test")
        assert refused.status == "error"
        written = state.apply_change(tenant.id, "dev", DmlOp.INSERT, "Contact", [dict(HOT)], "test")
        assert written.status == "ok"
        assert state.store(tenant.id, "dev").outbox_jobs() == []  # handed over and forgotten
        [job] = state.jobs.queue.list_jobs(JobFilter(kind=QUEUEABLE_KIND))
        assert job.key == f"exec:{written.id}:0"
    finally:
        state.close()
