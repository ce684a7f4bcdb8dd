"""A Python circuit on ABI 1.1.0 through a live server: its trigger calls ``jobs.enqueue``, the
server's worker runs the job through the circuit's ``@job`` handler, and its ``[[schedules]]`` tick
reaches ``@schedule``; its tests pass natively and in the sandbox, where the jobs row is linked too."""

from __future__ import annotations

import shutil
import subprocess
import sys
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
