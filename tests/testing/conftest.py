"""Fixtures for the test framework: the lab fixture circuit's test module, built once per session."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from circuit_host.bundles.manifest import read_manifest
from circuit_host.circuitdb import CircuitDB, open_store
from circuit_host.sandbox.runtime import Runtime
from circuit_host.testing import TestRunner
from circuit_host.testing.capability import runtime_for_tests
from circuit_host.toolchain.zig_build import build_tests

LAB = Path(__file__).resolve().parent / "circuits" / "lab"
EXAMPLES = Path(__file__).resolve().parents[2] / "examples"


@pytest.fixture(scope="session")
def lab_tests_wasm(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return build_tests(LAB, tmp_path_factory.mktemp("lab"))


@pytest.fixture(name="test_runtime")
def test_runtime_fixture() -> Iterator[Runtime]:
    with runtime_for_tests() as runtime:
        yield runtime


@pytest.fixture
def lab_records(tmp_path: Path) -> Iterator[CircuitDB]:
    store = open_store(tmp_path / "records.db")
    store.apply_schema(read_manifest(LAB / "circuit.toml").schema_changes())
    yield store
    store.close()


@pytest.fixture
def lab_runner(test_runtime: Runtime, lab_tests_wasm: Path, lab_records: CircuitDB) -> TestRunner:
    module = test_runtime.load(lab_tests_wasm.read_bytes())
    return TestRunner(test_runtime, module, lab_records, read_manifest(LAB / "circuit.toml"))
