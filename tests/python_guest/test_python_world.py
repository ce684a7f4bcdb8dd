"""Which world a Python circuit is built against: 1.1.0 exactly when its code reaches ``circuit_sdk.jobs``."""

from __future__ import annotations

from pathlib import Path

import pytest

from circuit_host.toolchain.python_world import source_uses_jobs, world_for


@pytest.mark.parametrize(
    "source",
    [
        "from circuit_sdk import jobs\n",
        "from circuit_sdk import records, jobs as j\n",
        "from circuit_sdk.jobs import enqueue\n",
        "import circuit_sdk.jobs\n",
        "import circuit_sdk\ncircuit_sdk.jobs.enqueue('x')\n",
        "from circuit_sdk import *\njobs.enqueue('x')\n",
    ],
)
def test_code_that_uses_jobs_is_seen(source: str) -> None:
    assert source_uses_jobs(source)


@pytest.mark.parametrize(
    "source",
    [
        "from circuit_sdk import records, trigger\n",
        "from circuit_sdk import *\nrecords.query('SELECT Id FROM Contact')\n",
        "jobs = []\njobs.append(1)\n",  # a local name is not the SDK's
        "from .circuit_sdk import jobs\n",  # a relative import is the circuit's own module
        "def broken(:\n",  # does not parse: componentize-py reports it
    ],
)
def test_code_that_does_not_use_jobs_is_not(source: str) -> None:
    assert not source_uses_jobs(source)


def test_the_world_follows_the_circuit_and_its_tests(tmp_path: Path) -> None:
    (tmp_path / "circuit.py").write_text("from circuit_sdk import trigger\n")
    assert world_for(tmp_path, "circuit") == "circuit"
    assert world_for(tmp_path, "circuit-test-coverage") == "circuit-test-coverage"
    (tmp_path / "build").mkdir()
    (tmp_path / "build" / "old.py").write_text("from circuit_sdk import jobs\n")  # build output is not the circuit
    assert world_for(tmp_path, "circuit") == "circuit"
    (tmp_path / "tests.py").write_text("from circuit_sdk import jobs\n")
    assert world_for(tmp_path, "circuit") == "circuit:script/circuit@1.1.0"
    assert world_for(tmp_path, "circuit-test-coverage") == "circuit:script/circuit-test-coverage@1.1.0"


def test_a_circuit_that_does_not_use_jobs_still_builds_against_1_0_0(py_wasm: Path) -> None:
    """The Python guests of this suite (Virtual LPR and the hostile handlers) never import jobs."""
    wasm = py_wasm.read_bytes()
    assert b"circuit:script/records@1.0.0" in wasm
    assert b"circuit:script/jobs" not in wasm
    assert b"@1.1.0" not in wasm
