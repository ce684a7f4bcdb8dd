"""Batch circuits on a live server: start, a chunk of ``scope`` records per execution, finish; a
failed chunk does not stop the others; a worker killed mid-batch (SIGKILL) leaves every chunk
committed exactly once after another worker resumes it."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path
from typing import Any

import httpx
import pytest

from circuit_host.bundles import pack_bundle
from circuit_host.toolchain.zig_build import build_circuit
from tests.cli.test_serve import circuit
from tests.server.conftest import LiveServer
from tests.server.test_end_to_end import deploy
from tests.server.test_fleet_schedules import fleet_api, start_worker  # noqa: F401 (the fixture)

HERE = Path(__file__).resolve().parent
LEASE_S = 8  # CIRCUIT_JOB_LEASE_S of the test's workers: heartbeats every 2.7 s, takeover after 8 s
CIRCUIT = HERE / "batch_circuit"
CIRCUIT_CLI = (sys.executable, "-m", "circuit_host.cli")
ROOT = HERE.parents[1]


@pytest.fixture(scope="module")
def batch_bundle(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("batch")
    return pack_bundle(CIRCUIT / "circuit.toml", build_circuit(CIRCUIT, out / "build"), out)


def seed(client: httpx.Client, count: int, marks: dict[int, str] | None = None) -> None:
    """``count`` Batch_Item__c records, item i marked ``marks[i]``."""
    marks = marks or {}
    items = [{"Name": f"item-{i:05d}", "Mark__c": marks.get(i)} for i in range(count)]
    for start in range(0, count, 5_000):
        answer = client.post("/v1/records/Batch_Item__c?env=dev", json={"records": items[start : start + 5_000]})
        assert answer.status_code == 200 and answer.json()["execution"]["status"] == "ok", answer.text


def settled(client: httpx.Client, batch_id: str, timeout: float = 60.0) -> dict[str, Any]:
    deadline = time.monotonic() + timeout
    while (batch := client.get(f"/v1/batches/{batch_id}").json())["state"] == "running":
        assert time.monotonic() < deadline, f"batch did not end: {batch}"
        time.sleep(0.1)
    return dict(batch)


def seen(client: httpx.Client) -> Counter[str]:
    answer = client.get("/v1/query", params={"soql": "SELECT Name FROM Batch_Seen__c", "env": "dev", "limit": 50_000})
    assert answer.status_code == 200, answer.text
    return Counter(r["Name"] for r in answer.json()["records"])


def test_a_batch_runs_start_every_chunk_and_finish_and_a_failed_chunk_stops_nothing(
    live: LiveServer, batch_bundle: Path
) -> None:
    tenant = live.tenant("acme")
    with tenant.client(live) as client:
        deploy(client, batch_bundle, env="dev")
        seed(client, 1_000, {450: "trap"})  # its chunk of 200 traps
        started = client.post("/v1/batches", json={"circuit": "batch_items", "env": "dev", "scope": 200})
        assert started.status_code == 202, started.text
        assert started.json()["state"] == "running" and started.json()["version"] == "1.0.0"
        batch = settled(client, started.json()["id"])
        assert batch["state"] == "finished", batch
        assert batch["query"] == "SELECT Id, Mark__c FROM Batch_Item__c WHERE Name != null"  # from start
        assert (batch["total"], batch["chunks_ok"], batch["chunks_failed"]) == (1_000, 4, 1)
        assert (batch["records_processed"], batch["records_failed"]) == (800, 200)
        rows = seen(client)
        assert rows.pop("finish") == 1 and set(rows.values()) == {1} and len(rows) == 800

        executions = client.get("/v1/executions", params={"limit": 100}).json()["executions"]
        phases = {e["trigger"].rsplit(":", 1)[1]: e for e in executions if e["trigger"].startswith("batch:")}
        assert sorted(phases) == ["0", "1", "2", "3", "4", "finish", "start"]
        assert sorted(phases[n]["status"] for n in "01234") == ["ok", "ok", "ok", "ok", "trap"]  # Ids are random
        finish = client.get(f"/v1/executions/{phases['finish']['id']}").json()
        assert "finished: 800 records processed, 1 chunks failed" in finish["debug_log"]
        assert finish["usage"]["queries"]["limit"] == 200  # the asynchronous profile
        jobs = client.get("/v1/jobs", params={"kind": "circuit.batch"}).json()["jobs"]
        assert all(j["state"] == "succeeded" for j in jobs) and len(jobs) == 8  # start, chunks 0-5 (5 empty), finish
        assert {j["execution_id"] for j in jobs if j["execution_id"]} == {e["id"] for e in phases.values()}
        assert [b["id"] for b in client.get("/v1/batches").json()["batches"]] == [batch["id"]]


def test_a_batch_with_a_query_skips_start_and_pages_only_what_it_selects(live: LiveServer, batch_bundle: Path) -> None:
    tenant = live.tenant("acme")
    with tenant.client(live) as client:
        deploy(client, batch_bundle, env="dev")
        seed(client, 250, {i: "odd" for i in range(1, 250, 2)})
        body = {
            "circuit": "batch_items",
            "env": "dev",
            "scope": 50,
            "query": "SELECT Id FROM Batch_Item__c WHERE Mark__c = 'odd'",
        }
        batch = settled(client, client.post("/v1/batches", json=body).json()["id"])
        assert (batch["state"], batch["total"], batch["chunks_ok"], batch["records_processed"]) == (
            "finished",
            125,
            3,
            125,
        )
        rows = seen(client)
        assert rows.pop("finish") == 1 and len(rows) == 125 and set(rows.values()) == {1}


def test_bad_batches_are_refused_and_other_tenants_see_nothing(live: LiveServer, batch_bundle: Path) -> None:
    tenant, other = live.tenant("acme"), live.tenant("globex")
    with tenant.client(live) as client:
        deploy(client, batch_bundle, env="dev")
        base = {"circuit": "batch_items", "env": "dev"}
        for scope in (0, 2_001):
            assert client.post("/v1/batches", json={**base, "scope": scope}).status_code == 422
        ordered = client.post("/v1/batches", json={**base, "query": "SELECT Id FROM Batch_Item__c ORDER BY Name"})
        assert ordered.status_code == 400 and "leave out ORDER BY" in ordered.text
        broken = client.post("/v1/batches", json={**base, "query": "SELECT Id FROM Batch_Item__c WHERE"})
        assert broken.status_code == 400
        assert client.post("/v1/batches", json={**base, "circuit": "nope"}).status_code == 404
        _, reader = live.state.platform.tenants.create_api_key(tenant.id, ["read"], "reader")
        with tenant.client(live, reader) as read_only:
            assert read_only.post("/v1/batches", json=base).status_code == 403
        batch = settled(client, client.post("/v1/batches", json=base).json()["id"])
        assert batch["state"] == "finished" and batch["records_processed"] == 0
    with other.client(live) as intruder:
        assert intruder.get(f"/v1/batches/{batch['id']}").status_code == 404
        assert intruder.post(f"/v1/batches/{batch['id']}/cancel").status_code == 404
        assert intruder.get("/v1/batches").json()["batches"] == []


def test_a_cancelled_batch_starts_no_further_chunk_and_does_not_finish(live: LiveServer, batch_bundle: Path) -> None:
    tenant = live.tenant("acme")
    with tenant.client(live) as client:
        deploy(client, batch_bundle, env="dev")
        seed(client, 1_000)
        body = {"circuit": "batch_items", "env": "dev", "scope": 100, "payload": {"spin": 100_000_000}}
        batch_id = client.post("/v1/batches", json=body).json()["id"]
        while client.get(f"/v1/batches/{batch_id}").json()["chunks_ok"] < 1:
            time.sleep(0.05)
        cancelled = client.post(f"/v1/batches/{batch_id}/cancel").json()
        assert cancelled["state"] == "cancelled" and cancelled["finished_at"] is not None
        deadline = time.monotonic() + 30
        while any(j["state"] in ("todo", "doing") for j in client.get("/v1/jobs").json()["jobs"]):
            assert time.monotonic() < deadline
            time.sleep(0.05)
        batch = client.get(f"/v1/batches/{batch_id}").json()
        assert batch["state"] == "cancelled" and batch["chunks_ok"] < 10, batch
        rows = seen(client)
        assert "finish" not in rows and len(rows) == batch["records_processed"]  # the running chunk completed
        assert client.post(f"/v1/batches/{batch_id}/cancel").json()["state"] == "cancelled"


# -- a worker killed mid-batch ---------------------------------------------------------------


def worker(data_dir: Path, log: Path, concurrency: int = 1) -> subprocess.Popen[bytes]:
    """``circuit worker`` on the server's data directory, once it says it runs (its output in ``log``);
    with a ``LEASE_S`` lease, so a killed worker's jobs are taken over sooner than the default 30 s."""
    with log.open("ab") as out:
        process = subprocess.Popen(
            [*CIRCUIT_CLI, "worker", "--data-dir", str(data_dir), "--concurrency", str(concurrency)],
            stdout=out,
            stderr=subprocess.STDOUT,
            cwd=ROOT,
            env={**os.environ, "CIRCUIT_JOB_LEASE_S": str(LEASE_S)},
        )
    deadline = time.monotonic() + 60
    while "circuit worker:" not in log.read_text().rsplit("worker started", 1)[-1]:
        assert process.poll() is None and time.monotonic() < deadline, log.read_text()
        time.sleep(0.05)
    return process


def test_a_worker_killed_mid_batch_leaves_every_chunk_committed_exactly_once(
    api_only: LiveServer, batch_bundle: Path, tmp_path: Path
) -> None:
    tenant = api_only.tenant("acme")
    with tenant.client(api_only) as client:
        deploy(client, batch_bundle, env="dev")
        seed(client, 1_000)
        body = {"circuit": "batch_items", "env": "dev", "scope": 100, "payload": {"spin": 150_000_000}}
        batch_id = client.post("/v1/batches", json=body).json()["id"]
        first = worker(tmp_path / "data", tmp_path / "first.log")
        try:
            deadline = time.monotonic() + 60
            while client.get(f"/v1/batches/{batch_id}").json()["chunks_ok"] < 3:
                assert time.monotonic() < deadline and first.poll() is None, "the worker made no progress"
                time.sleep(0.05)
        finally:
            os.kill(first.pid, signal.SIGKILL)
            first.wait(timeout=30)
        interrupted = client.get(f"/v1/batches/{batch_id}").json()
        assert interrupted["state"] == "running" and interrupted["chunks_ok"] < 10, interrupted
        second = worker(tmp_path / "data", tmp_path / "second.log")
        try:
            batch = settled(client, batch_id, timeout=120)  # the killed worker's lease (LEASE_S) expires first
        finally:
            second.send_signal(signal.SIGTERM)
            second.wait(timeout=60)
        assert (batch["state"], batch["chunks_ok"], batch["chunks_failed"]) == ("finished", 10, 0), batch
        assert batch["records_processed"] == 1_000
        rows = seen(client)
        assert rows.pop("finish") == 1
        assert len(rows) == 1_000 and set(rows.values()) == {1}  # none skipped, none committed twice


def running_jobs(client: httpx.Client) -> list[dict[str, Any]]:
    return list(client.get("/v1/jobs", params={"kind": "circuit.batch", "state": "doing"}).json()["jobs"])


def test_a_batch_job_that_dies_fails_its_chunk_and_the_batch_goes_on_or_fails_the_batch_at_start(
    api_only: LiveServer, batch_bundle: Path, tmp_path: Path
) -> None:
    """SIGKILL a worker while it runs two batch jobs on their only attempt: chunk n of one batch and
    the start of another. Once the leases expire both jobs are dead: the chunk counts as failed and
    its batch runs the rest and finishes; the other batch ends failed, saying why, in the API and the CLI."""
    live = api_only
    tenant = live.tenant("acme")
    live.state.platform.tenants.update_settings(tenant.id, {"batch_max_attempts": 1})  # a killed worker: dead
    rows = live.state.batches.rows
    with tenant.client(live) as client:
        deploy(client, batch_bundle, env="dev")
        seed(client, 500)
        going_on = client.post(
            "/v1/batches", json={"circuit": "batch_items", "env": "dev", "scope": 100, "payload": {"spin": 300_000_000}}
        ).json()["id"]
        first = worker(tmp_path / "data", tmp_path / "first.log", concurrency=2)
        try:
            deadline = time.monotonic() + 90
            while client.get(f"/v1/batches/{going_on}").json()["chunks_ok"] < 1:
                assert time.monotonic() < deadline and first.poll() is None, "the worker made no progress"
                time.sleep(0.05)
            body = {"circuit": "batch_items", "env": "dev", "payload": {"start_spin": 3_000_000_000}}
            failing = client.post("/v1/batches", json=body).json()["id"]
            while True:  # kill once the worker runs failing's start and a chunk of going_on whose records it read
                assert time.monotonic() < deadline and first.poll() is None, "the jobs did not run together"
                running = [j["payload"] for j in running_jobs(client)]
                chunks = [rows.chunk(going_on, p["n"]) for p in running if p["batch_id"] == going_on and "n" in p]
                started = {"batch_id": failing, "phase": "start"} in running
                if started and (killed := [c.n for c in chunks if c is not None and c.state == "running"]):
                    break
                time.sleep(0.02)
        finally:
            os.kill(first.pid, signal.SIGKILL)
            first.wait(timeout=30)
        [killed_chunk] = killed
        second = worker(tmp_path / "data", tmp_path / "second.log")
        try:
            batch = settled(client, going_on, timeout=150)  # the killed worker's leases (LEASE_S) expire first
            failed = settled(client, failing, timeout=30)
        finally:
            second.send_signal(signal.SIGTERM)
            second.wait(timeout=60)

        assert (batch["state"], batch["chunks_ok"], batch["chunks_failed"]) == ("finished", 4, 1), batch
        assert (batch["records_processed"], batch["records_failed"]) == (400, 100)
        seen_rows = seen(client)
        assert seen_rows.pop("finish") == 1 and len(seen_rows) == 400 and set(seen_rows.values()) == {1}
        dead_chunk = rows.chunk(going_on, killed_chunk)
        assert dead_chunk is not None and dead_chunk.state == "failed" and dead_chunk.execution_id is None
        assert dead_chunk.error is not None and "stopped heartbeating" in dead_chunk.error
        jobs = client.get("/v1/jobs", params={"kind": "circuit.batch", "limit": 100}).json()["jobs"]
        dead = {(j["payload"]["batch_id"], j["payload"]["phase"]) for j in jobs if j["state"] == "dead"}
        assert dead == {(going_on, str(killed_chunk)), (failing, "start")}
        executions = client.get("/v1/executions", params={"limit": 100}).json()["executions"]
        [finish] = [e for e in executions if e["trigger"] == f"batch:{going_on}:finish"]
        log = client.get(f"/v1/executions/{finish['id']}").json()["debug_log"]
        assert "finished: 400 records processed, 1 chunks failed" in log

        assert failed["state"] == "failed" and failed["finished_at"] is not None, failed
        assert failed["error"].startswith("start: job ") and "stopped heartbeating" in failed["error"]
        assert (failed["chunks_ok"], failed["chunks_failed"]) == (0, 0)
    done = circuit("batch", "status", failing, key=tenant.admin_key, server=live.url)
    assert done.returncode == 1, done.stderr
    assert (
        done.stdout.strip()
        == f"batch {failing} failed: 0 chunks ok, 0 failed, 0 records (0 processed): {failed['error']}"
    )


def test_on_postgresql_workers_killed_mid_batch_leave_a_new_one_to_finish_it_exactly_once(
    fleet_api: tuple[LiveServer, str],  # noqa: F811
    postgres_database: str,
    batch_bundle: Path,
    tmp_path: Path,
) -> None:
    live, key = fleet_api
    tenant = live.tenant("fleet")
    with tenant.client(live) as client:
        deploy(client, batch_bundle, env="dev")
        seed(client, 1_000, {777: "trap"})
        body = {"circuit": "batch_items", "env": "dev", "scope": 100, "payload": {"spin": 100_000_000}}
        batch_id = client.post("/v1/batches", json=body).json()["id"]
        workers = [
            start_worker(postgres_database, key, tmp_path / n, tmp_path / f"{n}.log", LEASE_S) for n in ("w1", "w2")
        ]
        try:
            deadline = time.monotonic() + 90
            while client.get(f"/v1/batches/{batch_id}").json()["chunks_ok"] < 3:
                assert time.monotonic() < deadline, "the workers made no progress"
                time.sleep(0.05)
        finally:
            for process in workers:  # whichever runs the current chunk
                os.kill(process.pid, signal.SIGKILL)
                process.wait(timeout=30)
        assert client.get(f"/v1/batches/{batch_id}").json()["state"] == "running"
        survivor = start_worker(postgres_database, key, tmp_path / "w3", tmp_path / "w3.log", LEASE_S)
        try:
            batch = settled(client, batch_id, timeout=150)  # it re-runs the stalled job after LEASE_S
        finally:
            survivor.send_signal(signal.SIGTERM)
            survivor.wait(timeout=60)
        assert (batch["state"], batch["chunks_ok"], batch["chunks_failed"]) == ("finished", 9, 1), batch
        assert (batch["records_processed"], batch["records_failed"]) == (900, 100)
        rows = seen(client)
        assert rows.pop("finish") == 1
        assert len(rows) == 900 and set(rows.values()) == {1}


def test_on_postgresql_a_chunk_whose_worker_was_killed_on_its_last_attempt_counts_failed_and_the_batch_finishes(
    fleet_api: tuple[LiveServer, str],  # noqa: F811
    postgres_database: str,
    batch_bundle: Path,
    tmp_path: Path,
) -> None:
    """The same on the fleet backend: the stalled job is failed by another worker's recovery, which
    tells the batch (``requeue_stalled``), and the batch runs its other chunks and finishes."""
    live, key = fleet_api
    tenant = live.tenant("fleet")
    live.state.platform.tenants.update_settings(tenant.id, {"batch_max_attempts": 1})
    rows = live.state.batches.rows
    with tenant.client(live) as client:
        deploy(client, batch_bundle, env="dev")
        seed(client, 500)
        body = {"circuit": "batch_items", "env": "dev", "scope": 100, "payload": {"spin": 300_000_000}}
        batch_id = client.post("/v1/batches", json=body).json()["id"]
        first = start_worker(postgres_database, key, tmp_path / "w1", tmp_path / "w1.log", LEASE_S)
        try:
            deadline = time.monotonic() + 90
            while True:  # kill once a chunk after the first runs, its records read
                assert time.monotonic() < deadline and first.poll() is None, "the worker made no progress"
                running = [j["payload"] for j in running_jobs(client)]
                chunks = [rows.chunk(batch_id, p["n"]) for p in running if p.get("n")]
                if killed := [c.n for c in chunks if c is not None and c.state == "running"]:
                    break
                time.sleep(0.02)
        finally:
            os.kill(first.pid, signal.SIGKILL)
            first.wait(timeout=30)
        [killed_chunk] = killed
        survivor = start_worker(postgres_database, key, tmp_path / "w2", tmp_path / "w2.log", LEASE_S)
        try:
            batch = settled(client, batch_id, timeout=150)  # its recovery fails the stalled job after LEASE_S
        finally:
            survivor.send_signal(signal.SIGTERM)
            survivor.wait(timeout=60)
        assert (batch["state"], batch["chunks_ok"], batch["chunks_failed"]) == ("finished", 4, 1), batch
        assert (batch["records_processed"], batch["records_failed"]) == (400, 100)
        seen_rows = seen(client)
        assert seen_rows.pop("finish") == 1 and len(seen_rows) == 400 and set(seen_rows.values()) == {1}
        dead_chunk = rows.chunk(batch_id, killed_chunk)
        assert dead_chunk is not None and dead_chunk.state == "failed"
        assert dead_chunk.error is not None and "stopped heartbeating" in dead_chunk.error
