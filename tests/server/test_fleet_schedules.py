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
from pathlib import Path

import httpx
import pytest
from pydantic import SecretStr

from circuit_host.bundles import pack_bundle
from circuit_host.platform import MasterKey
from circuit_host.server import ServerSettings
from circuit_host.server.state import ServerState
from circuit_host.toolchain.zig_build import build_circuit, build_tests
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


def start_worker(db_url: str, key: str, data_dir: Path, log: Path) -> subprocess.Popen[bytes]:
    """``circuit worker --db URL`` with the fleet's master key, once it says it runs."""
    command = [sys.executable, "-m", "circuit_host.cli", "worker", "--db", db_url, "--data-dir", str(data_dir)]
    with log.open("ab") as out:
        process = subprocess.Popen(
            [*command, "--concurrency", "2"],
            stdout=out,
            stderr=subprocess.STDOUT,
            cwd=ROOT,
            env={**os.environ, "CIRCUIT_MASTER_KEY": key},
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
