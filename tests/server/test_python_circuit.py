"""A Python circuit through the server: built by ``circuit build``, gated by its own tests in the
sandbox, deployed to production and fired by a signed GoHighLevel webhook, end to end."""

from __future__ import annotations

import shutil
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from circuit_host.server import ServerSettings
from circuit_host.server.state import ServerState
from circuit_host.testing import run_native_tests

from .conftest import ROOT, LiveServer, executions_of, serve
from .test_end_to_end import configure, deploy, ghl_contact, post_ghl

EXAMPLE = ROOT / "examples" / "virtual_lpr_py"


@pytest.fixture(scope="module")
def py_bundle(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """``circuit build examples/virtual_lpr_py``: the component, its test component, the bundle."""
    source = tmp_path_factory.mktemp("vlpr-py") / "virtual_lpr_py"
    shutil.copytree(EXAMPLE, source, ignore=shutil.ignore_patterns("build"))
    done = subprocess.run(
        [sys.executable, "-m", "circuit_host.cli", "build", str(source)],
        capture_output=True,
        text=True,
        timeout=600,
        cwd=ROOT,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    [bundle] = (source / "build").glob("*.circuit")
    return bundle


@pytest.fixture(scope="module")
def cache_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("modules")  # compiled components outlive one server


@pytest.fixture
def py_live(tmp_path: Path, cache_dir: Path) -> Iterator[LiveServer]:
    settings = ServerSettings(data_dir=tmp_path / "data", cache_dir=cache_dir)
    state = ServerState(settings)
    try:
        yield from serve(state, settings)
    finally:
        state.close()


def test_python_circuit_is_gated_deployed_and_fired_by_a_webhook(py_live: LiveServer, py_bundle: Path) -> None:
    tenant = py_live.tenant("acme")
    configure(py_live, tenant)
    with tenant.client(py_live) as client:
        assert [c["version"] for c in deploy(client, py_bundle)] == ["1.0.0"]  # production: the gate ran
        [gate] = client.get("/v1/gate-runs").json()
        assert gate["passed"] and gate["detail"].startswith("7 tests passed")
        # the gate's sandbox figure is the one coverage.py measures natively on the same tests
        native = run_native_tests(EXAMPLE, coverage=True)
        assert native.coverage is not None and native.passed
        assert gate["coverage"] == pytest.approx(native.coverage.percent, abs=0.01)

        [execution] = executions_of(client, post_ghl(client, tenant, ghl_contact()))
        assert execution["status"] == "ok", execution
        soql = "SELECT LastName, VLPR_Score__c, VLPR_Grade__c, GHL_Id__c FROM Contact"
        [contact] = client.get("/v1/query", params={"soql": soql}).json()["records"]
        assert (contact["LastName"], contact["VLPR_Grade__c"], contact["GHL_Id__c"]) == ("Raman", "A", "ghl-contact-1")
        tasks = client.get("/v1/query", params={"soql": "SELECT Subject, WhoId FROM Task"}).json()["records"]
        assert [t["WhoId"] for t in tasks] == [contact["Id"]]
        assert tasks[0]["Subject"] == f"CRITICAL: call Priya Raman (VLPR {contact['VLPR_Score__c']})"
        stored = client.get(f"/v1/executions/{execution['id']}").json()
        assert stored["version"] == "virtual_lpr_py@1.0.0"
        for event in ("EXECUTION_START", "CODE_UNIT_STARTED", "QUERY|Rows:0", "DML|Rows:1", "EXECUTION_END"):
            assert event in stored["debug_log"], event


def test_a_python_test_component_cannot_be_deployed_as_the_circuit(
    py_live: LiveServer, py_bundle: Path, tmp_path: Path
) -> None:
    import zipfile

    tenant = py_live.tenant("acme")
    hostile = tmp_path / "hostile.circuit"
    with zipfile.ZipFile(py_bundle) as original, zipfile.ZipFile(hostile, "w") as copy:
        copy.writestr("circuit.toml", original.read("circuit.toml"))
        copy.writestr("module.wasm", original.read("tests.wasm"))  # imports circuit:script/testing
    with tenant.client(py_live) as client:
        refused = client.post("/v1/bundles", content=hostile.read_bytes(), headers={"content-type": "application/zip"})
        assert refused.status_code == 422, refused.text
        assert "circuit:script/testing@1.0.0" in refused.json()["detail"]


def test_circuit_run_executes_the_built_component(py_bundle: Path, cache_dir: Path, tmp_path: Path) -> None:
    import json

    wasm = py_bundle.parent / "virtual_lpr_py.wasm"
    db = tmp_path / "records.db"
    command = [sys.executable, "-m", "circuit_host.cli", "--cache-dir", str(cache_dir), "run", str(wasm)]
    command += ["--event", str(EXAMPLE / "event.json"), "--manifest", str(EXAMPLE / "circuit.toml")]
    done = subprocess.run([*command, "--db", str(db), "--json"], capture_output=True, text=True, timeout=300, cwd=ROOT)
    assert done.returncode == 0, done.stderr[-3000:]
    record = json.loads(done.stdout)
    event = json.loads((EXAMPLE / "event.json").read_text())
    assert record["status"] == "ok" and record["committed"]
    assert record["output"] == {"scored": len(event["new"]), "grade_a": 1}
    assert record["usage"]["fuel"]["used"] > 0
