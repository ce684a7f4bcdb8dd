"""A Python circuit on ABI 1.1.0 through a live server: its trigger calls ``jobs.enqueue``, the
server's worker runs the job through the circuit's ``@job`` handler, its ``[[schedules]]`` tick
reaches ``@schedule``, and a batch runs ``@batch_start``, ``@batch_execute`` per chunk and
``@batch_finish``; its tests pass natively and in the sandbox, where the jobs row is linked too."""

from __future__ import annotations

import shutil
import subprocess
import sys
from collections import Counter
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from circuit_host.bundles.manifest import read_manifest
from circuit_host.sandbox.runtime import Runtime
from circuit_host.server import ServerSettings
from circuit_host.server.state import ServerState
from circuit_host.testing import run_native_tests, run_test_module

from .conftest import ROOT, LiveServer, serve
from .test_async_circuits import finished_job
from .test_batch_circuits import settled
from .test_end_to_end import deploy

CIRCUIT = ROOT / "tests" / "python_guest" / "jobs_circuit"


@pytest.fixture(scope="module")
def built(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """``circuit build`` of the jobs circuit: the directory holding the component, its tests and the bundle."""
    source = tmp_path_factory.mktemp("py-jobs") / "py_jobs"
    shutil.copytree(CIRCUIT, source, ignore=shutil.ignore_patterns("build", "__pycache__"))
    done = subprocess.run(
        [sys.executable, "-m", "circuit_host.cli", "build", str(source)],
        capture_output=True,
        text=True,
        timeout=900,
        cwd=ROOT,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    return source


@pytest.fixture(scope="module")
def cache_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("modules")


@pytest.fixture
def py_live(tmp_path: Path, built: Path, cache_dir: Path) -> Iterator[LiveServer]:
    with Runtime(cache_dir) as runtime:  # compiled once here, so the deploy request only deserializes it
        runtime.load_file(built / "build" / "py_jobs.wasm")
    settings = ServerSettings(data_dir=tmp_path / "data", cache_dir=cache_dir)
    state = ServerState(settings)
    try:
        yield from serve(state, settings)
    finally:
        state.close()


def imports_of(wasm: Path) -> set[str]:
    wit = subprocess.run(
        [str(Path(sys.executable).with_name("wasm-tools")), "component", "wit", str(wasm)],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    return {line.split()[1].rstrip(";") for line in wit.splitlines() if line.strip().startswith("import circuit:")}


def test_a_circuit_that_uses_jobs_is_built_against_1_1_0(built: Path) -> None:
    expected = {
        "circuit:script/jobs@1.1.0",
        "circuit:script/records@1.0.0",
        "circuit:script/http@1.0.0",
        "circuit:script/log@1.0.0",
        "circuit:script/limits@1.0.0",
    }
    assert imports_of(built / "build" / "py_jobs.wasm") == expected
    assert imports_of(built / "build" / "py_jobs_tests.wasm") == {*expected, "circuit:script/testing@1.0.0"}


def test_its_tests_pass_natively_and_in_the_sandbox(built: Path, cache_dir: Path) -> None:
    names = {
        "test_an_insert_fires_the_trigger_that_enqueues",
        "test_enqueue_returns_the_job_key_and_is_charged",
        "test_a_payload_that_is_not_json_like_is_a_job_error",
        "test_the_job_handler_marks_the_contacts",
        "test_a_batch_chunk_is_marked_and_a_trap_fails_it",
    }
    native = run_native_tests(built)
    assert {(r.name, r.status) for r in native.results} == {(name, "pass") for name in names}, native.results
    wasm = (built / "build" / "py_jobs_tests.wasm").read_bytes()
    sandboxed = run_test_module(wasm, read_manifest(built / "circuit.toml"), cache_dir)
    assert {(r.name, r.status) for r in sandboxed.results} == {(name, "pass") for name in names}, sandboxed.results


def test_the_trigger_enqueues_a_job_that_runs_the_job_handler_and_the_schedule_ticks(
    py_live: LiveServer, built: Path
) -> None:
    [bundle] = (built / "build").glob("*.circuit")
    tenant = py_live.tenant("acme")
    with tenant.client(py_live) as client:
        client.timeout = httpx.Timeout(120)  # a 2-core machine shared with other builds
        deploy(client, bundle, env="dev")
        written = client.post("/v1/records/Contact?env=dev", json={"records": [{"LastName": "Queued"}]}).json()
        assert written["execution"]["status"] == "ok", written
        [contact_id] = written["ids"]
        job = finished_job(client, "circuit.job", timeout=120)
        assert job["state"] == "succeeded", job
        assert job["payload"]["payload"] == {"ids": [contact_id], "note": "from the trigger"}
        execution = client.get(f"/v1/executions/{job['execution_id']}").json()
        assert execution["trigger"] == f"job:{job['id']}" and execution["status"] == "ok", execution
        soql = "SELECT Enriched__c FROM Contact"
        rows = client.get("/v1/query", params={"soql": soql, "env": "dev"}).json()["records"]
        assert [r["Enriched__c"] for r in rows] == ["from the trigger at depth 1"]
        tick = finished_job(client, "circuit.schedule", timeout=120)
        assert tick["state"] == "succeeded", tick
        ticked = client.get(f"/v1/executions/{tick['execution_id']}").json()
        assert ticked["status"] == "ok", ticked
        assert "schedule every-second ticked at 20" in ticked["debug_log"]
        assert "with {'note': 'tick'}" in ticked["debug_log"]


def test_a_batch_runs_start_each_chunk_and_finish_through_the_python_handlers(py_live: LiveServer, built: Path) -> None:
    [bundle] = (built / "build").glob("*.circuit")
    tenant = py_live.tenant("acme")
    with tenant.client(py_live) as client:
        client.timeout = httpx.Timeout(120)
        deploy(client, bundle, env="dev")
        items = [{"Name": "trap" if i == 120 else f"item-{i:03d}"} for i in range(300)]
        seeded = client.post("/v1/records/Py_Item__c?env=dev", json={"records": items}).json()
        assert seeded["execution"]["status"] == "ok", seeded
        started = client.post("/v1/batches", json={"circuit": "py_jobs", "env": "dev", "scope": 100})
        assert started.status_code == 202, started.text
        batch = settled(client, started.json()["id"], timeout=180)
        assert batch["state"] == "finished", batch
        assert batch["query"] == "SELECT Id, Name FROM Py_Item__c WHERE Name != null"  # from @batch_start
        assert (batch["total"], batch["chunks_ok"], batch["chunks_failed"]) == (300, 2, 1)
        assert (batch["records_processed"], batch["records_failed"]) == (200, 100)
        soql = "SELECT Name, Seen__c FROM Py_Item__c"
        rows = client.get("/v1/query", params={"soql": soql, "env": "dev", "limit": 1000}).json()["records"]
        marked = Counter(r["Seen__c"] for r in rows)
        assert len(marked) == 3 and set(marked.values()) == {100}, marked  # Ids are random: any chunk traps
        assert [r["Seen__c"] for r in rows if r["Name"] == "trap"] == [None]  # its chunk rolled back
        executions = client.get("/v1/executions", params={"limit": 100}).json()["executions"]
        phases = {e["trigger"].rsplit(":", 1)[1]: e for e in executions if e["trigger"].startswith("batch:")}
        assert sorted(phases) == ["0", "1", "2", "finish", "start"], sorted(phases)  # chunk 3 was empty
        failed = [phases[n] for n in "012" if phases[n]["status"] != "ok"]
        assert len(failed) == 1 and "holds a trap" in str(failed[0]["error"]), failed
        finish = client.get(f"/v1/executions/{phases['finish']['id']}").json()
        assert f"batch {batch['id']}: 200 processed, 1 chunks failed" in finish["debug_log"]
