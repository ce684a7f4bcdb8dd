"""Fixtures for the Zig guest SDK: the examples built once per session, with the real toolchain."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from circuit_host.circuitdb import CircuitDB, open_store
from circuit_host.circuitdb.manifest import read_schema
from circuit_host.toolchain.zig_build import build_circuit

REPO = Path(__file__).resolve().parents[2]
EXAMPLES = REPO / "examples"
SDK = REPO / "guest_sdk" / "zig"


@pytest.fixture(scope="session")
def example_wasm(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """Both examples compiled (ReleaseSmall) into a temp dir, so tests never touch zig-out/."""
    out = tmp_path_factory.mktemp("examples")
    return {name: build_circuit(EXAMPLES / name, out / name) for name in ("hello", "virtual_lpr")}


@pytest.fixture
def records(tmp_path: Path) -> Iterator[CircuitDB]:
    """The store the examples run against, with Virtual LPR's custom schema applied."""
    store = open_store(tmp_path / "records.db")
    store.apply_schema(read_schema(EXAMPLES / "virtual_lpr" / "circuit.toml"))
    yield store
    store.close()
