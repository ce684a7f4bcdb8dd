"""Scheduled circuits across a fleet, and through the deploy lifecycle.

Two ``circuit worker`` processes on one fresh PostgreSQL database (one master key, as a fleet must
have) run a schedule that ticks every second: each tick runs exactly once, counted by the row the
circuit inserts per tick. A promotion replaces an environment's schedules with the promoted
version's, and a rollback restores the earlier version's (there is no undeploy route).
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections import Counter
from collections.abc import Iterator
from datetime import datetime
from pathlib import Path

import httpx
import pytest
from pydantic import SecretStr

from circuit_host.bundles import pack_bundle
from circuit_host.jobs import JobFilter, JobRequest, JobState, RetryPolicy
from circuit_host.platform import MasterKey
from circuit_host.server import ServerSettings
from circuit_host.server.async_circuits import SCHEDULE_KIND
from circuit_host.server.state import ServerState
from circuit_host.toolchain.zig_build import build_circuit, build_tests
from tests.private_postgres import PrivateCluster
from tests.server.conftest import LiveServer, deployed, serve
from tests.server.test_end_to_end import deploy

HERE = Path(__file__).resolve().parent
CIRCUIT = HERE / "tick_circuit"
ROOT = HERE.parents[1]
EVERY_OTHER_SECOND = '[[schedules]]\nname = "every-other-second"\ncron = "* * * * * */2"\ntimezone = "UTC"\n'


@pytest.fixture(scope="module")
def tick_bundles(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """1.0.0 ticks every second (schedule ``every-second``); 2.0.0, the same code, every other second
    under another name (``every-other-second``)."""
    out = tmp_path_factory.mktemp("ticks")
    wasm, tests = build_circuit(CIRCUIT, out / "build"), build_tests(CIRCUIT, out / "build")
    manifest = (CIRCUIT / "circuit.toml").read_text()
    schedule = manifest[manifest.index("[[schedules]]") : manifest.index("[[schema.objects]]")]
    second = out / "v2" / "circuit.toml"
    second.parent.mkdir()
    second.write_text(manifest.replace('version = "1.0.0"', 'version = "2.0.0"').replace(schedule, EVERY_OTHER_SECOND))
    return {
        "1.0.0": pack_bundle(CIRCUIT / "circuit.toml", wasm, out, tests),
        "2.0.0": pack_bundle(second, wasm, out / "v2", tests),
    }


def ticks_seen(client: httpx.Client, env: str) -> Counter[tuple[str, str]]:
    soql = "SELECT Name, Schedule__c FROM Tick_Seen__c"
    answer = client.get("/v1/query", params={"soql": soql, "env": env, "limit": 50_000})
    assert answer.status_code == 200, answer.text
    return Counter((r["Schedule__c"], r["Name"]) for r in answer.json()["records"])


# -- two worker processes on one PostgreSQL ---------------------------------------------------


@pytest.fixture
def fleet_api(tmp_path: Path, postgres_database: str) -> Iterator[tuple[LiveServer, str]]:
    """The fleet's API server, with no job workers of its own, and the fleet's master key."""
    key = MasterKey.generate().encoded()
    settings = ServerSettings(
        data_dir=tmp_path / "api", db_url=postgres_database, master_key=SecretStr(key), job_workers=0
    )
    state = ServerState(settings)
    try:
        for live in serve(state, settings):
            yield live, key
    finally:
        state.close()


def start_worker(
    db_url: str, key: str, data_dir: Path, log: Path, lease_s: float | None = None
) -> subprocess.Popen[bytes]:
    """``circuit worker --db URL`` with the fleet's master key, once it says it runs."""
    command = [sys.executable, "-m", "circuit_host.cli", "worker", "--db", db_url, "--data-dir", str(data_dir)]
    with log.open("ab") as out:
        process = subprocess.Popen(
            [*command, "--concurrency", "2"],
            stdout=out,
            stderr=subprocess.STDOUT,
            cwd=ROOT,
            env={**os.environ, "CIRCUIT_MASTER_KEY": key, **({"CIRCUIT_JOB_LEASE_S": str(lease_s)} if lease_s else {})},
        )
    deadline = time.monotonic() + 90
    while "circuit worker:" not in log.read_text():
        assert process.poll() is None and time.monotonic() < deadline, log.read_text()
        time.sleep(0.05)
    return process


def test_two_workers_on_one_postgresql_run_each_tick_once(
    fleet_api: tuple[LiveServer, str], tick_bundles: dict[str, Path], postgres_database: str, tmp_path: Path
) -> None:
    live, key = fleet_api
    tenant = live.tenant("fleet")
    workers = [start_worker(postgres_database, key, tmp_path / n, tmp_path / f"{n}.log") for n in ("w1", "w2")]
    try:
        with tenant.client(live) as client:
            deploy(client, tick_bundles["1.0.0"], env="dev")
            deadline = time.monotonic() + 60
            while not ticks_seen(client, "dev"):
                assert time.monotonic() < deadline, [(tmp_path / f"{n}.log").read_text()[-2000:] for n in ("w1", "w2")]
                time.sleep(0.1)
            time.sleep(4.5)  # ~4 more ticks, each offered to both workers
            for process in workers:
                process.send_signal(signal.SIGTERM)
            for process in workers:
                assert process.wait(timeout=60) == 0
            seen = ticks_seen(client, "dev")
            jobs = client.get("/v1/jobs", params={"kind": "circuit.schedule", "limit": 500}).json()["jobs"]
    finally:
        for process in workers:
            if process.poll() is None:
                process.kill()
                process.wait(timeout=30)
    assert len(seen) >= 4, seen
    assert set(seen.values()) == {1}, [tick for tick, n in seen.items() if n > 1]  # no tick ran twice
    assert {schedule for schedule, _ in seen} == {"every-second"}
    ticks = sorted(tick for _, tick in seen)
    assert len(set(ticks)) == len(ticks)
    succeeded = [job for job in jobs if job["state"] == "succeeded"]
    assert len(succeeded) == len(seen), jobs  # one job per tick, each ran once
    assert all(job["circuit"] == "ticks" and job["env"] == "dev" for job in succeeded)


# -- PostgreSQL restarted under two worker processes -------------------------------------------


@pytest.fixture
def private_fleet_api(private_postgres: PrivateCluster, tmp_path: Path) -> Iterator[tuple[LiveServer, str, str]]:
    """``fleet_api`` on a PostgreSQL cluster of this test's own, which it may restart: the server,
    the master key and the database URL."""
    db_url = private_postgres.create_database("fleet").replace("postgresql+psycopg://", "postgresql://")
    key = MasterKey.generate().encoded()
    settings = ServerSettings(data_dir=tmp_path / "api", db_url=db_url, master_key=SecretStr(key), job_workers=0)
    state = ServerState(settings)
    try:
        for live in serve(state, settings):
            yield live, key, db_url
    finally:
        state.close()


BACKLOG = 300


def backlog_job(tenant_id: str, n: int) -> JobRequest:
    """A ``circuit.schedule`` job as a tick would enqueue it, for the tick circuit's Tick_Seen__c row."""
    inner = {"schedule": "backlog", "owner": "ticks", "payload": None}
    return JobRequest(
        SCHEDULE_KIND,
        {"tick": f"backlog-{n:03}", "payload": inner},
        tenant_id=tenant_id,
        circuit="ticks",
        env="dev",
        retry=RetryPolicy(max_attempts=5, backoff_s=0.5),
    )


def test_two_workers_outlive_a_postgresql_restart_and_run_each_job_once(
    private_fleet_api: tuple[LiveServer, str, str],
    private_postgres: PrivateCluster,
    tick_bundles: dict[str, Path],
    tmp_path: Path,
) -> None:
    """PostgreSQL stopped (fast: connections cut, open transactions rolled back) and started again
    while two ``circuit worker`` processes run a backlog of jobs and the every-second schedule: the
    same processes reconnect by themselves, every job succeeds, and each committed its row once."""
    live, key, db_url = private_fleet_api
    queue = live.state.jobs.queue
    tenant = live.tenant("fleet")
    logs = [tmp_path / f"{n}.log" for n in ("w1", "w2")]
    workers: list[subprocess.Popen[bytes]] = []
    try:
        with tenant.client(live) as client:
            deploy(client, tick_bundles["1.0.0"], env="dev")
            workers = [start_worker(db_url, key, tmp_path / log.stem, log) for log in logs]
            ids = {job.id for n in range(BACKLOG) if (job := queue.enqueue(backlog_job(tenant.id, n))) is not None}

            def succeeded() -> int:
                done = queue.list_jobs(JobFilter(kind=SCHEDULE_KIND, state=JobState.SUCCEEDED, limit=1000))
                return len(ids & {job.id for job in done})

            deadline = time.monotonic() + 60
            while succeeded() < 1:
                assert time.monotonic() < deadline, [log.read_text()[-2000:] for log in logs]
                time.sleep(0.05)
            private_postgres.restart(down_s=2.0)
            restarted_at = time.time()
            assert succeeded() < len(ids)  # the restart came mid-run
            deadline = time.monotonic() + 120
            while succeeded() < len(ids):
                if time.monotonic() > deadline:
                    done = queue.list_jobs(JobFilter(kind=SCHEDULE_KIND, state=JobState.SUCCEEDED, limit=1000))
                    left = [queue.get(i) for i in sorted(ids - {job.id for job in done})]
                    pytest.fail(f"unfinished after the restart: {left}")
                time.sleep(0.2)
            time.sleep(3)  # ticks after the restart
            assert [process.poll() for process in workers] == [None, None]  # the same processes, reconnected
            for process in workers:
                process.send_signal(signal.SIGTERM)
            for process in workers:
                assert process.wait(timeout=60) == 0
            seen = ticks_seen(client, "dev")
            jobs = client.get("/v1/jobs", params={"kind": SCHEDULE_KIND, "limit": 500}).json()["jobs"]
    finally:
        for process in workers:
            if process.poll() is None:
                process.kill()
                process.wait(timeout=30)
    backlog = {tick: n for (schedule, tick), n in seen.items() if schedule == "backlog"}
    assert backlog == {f"backlog-{n:03}": 1 for n in range(BACKLOG)}  # every job committed its row once
    assert set(seen.values()) == {1}, [tick for tick, n in seen.items() if n > 1]  # no tick ran twice either
    last_tick = datetime.fromisoformat(max(tick for schedule, tick in seen if schedule == "every-second"))
    assert last_tick.timestamp() > restarted_at  # the schedule ticks again after the restart
    assert [job for job in jobs if job["state"] in ("dead", "cancelled")] == []


# -- the deploy lifecycle ---------------------------------------------------------------------


def test_a_promotion_replaces_an_environments_schedules_and_a_rollback_restores_them(
    live: LiveServer, tick_bundles: dict[str, Path]
) -> None:
    tenant = live.tenant("acme")
    live.state.platform.tenants.update_settings(tenant.id, {"coverage_threshold": 0})
    source = live.state.async_circuits.deployed_schedules

    def schedules(env: str) -> list[tuple[str, str]]:
        return sorted((s.id, s.cron) for s in source() if s.tenant_id == tenant.id and f":{env}:" in s.id)

    with tenant.client(live) as client:
        deploy(client, tick_bundles["1.0.0"], env="dev")
        promoted = deployed(client, client.post("/v1/promotions", json={"from": "dev", "to": "staging"}))
        assert schedules("staging") == [(f"circuit:{tenant.id}:staging:ticks:every-second", "* * * * * *")]

        deploy(client, tick_bundles["2.0.0"], env="dev")
        promoted = deployed(client, client.post("/v1/promotions", json={"from": "dev", "to": "staging"}))
        assert [c["version"] for c in promoted] == ["2.0.0"]
        assert schedules("staging") == [(f"circuit:{tenant.id}:staging:ticks:every-other-second", "* * * * * */2")]
        deadline = time.monotonic() + 30
        while not any(schedule == "every-other-second" for schedule, _ in ticks_seen(client, "staging")):
            assert time.monotonic() < deadline, "the promoted schedule never ticked"
            time.sleep(0.1)

        rolled = client.post("/v1/environments/staging/rollback", json={"circuit": "ticks"})
        assert rolled.status_code == 200, rolled.text
        assert schedules("staging") == [(f"circuit:{tenant.id}:staging:ticks:every-second", "* * * * * *")]
        assert schedules("dev") == [(f"circuit:{tenant.id}:dev:ticks:every-other-second", "* * * * * */2")]
