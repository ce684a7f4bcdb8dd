"""The Python-guest fixtures: ONE componentize-py build and ONE compile per test session.

The component holds the Virtual LPR example byte for byte (as module ``vlpr``) plus a few
hostile handlers on ``Account`` (``hostile.py``), so one 10-30 s build covers every test.
"""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest

from circuit_host.sandbox.components import CircuitComponent
from circuit_host.sandbox.runtime import Runtime
from circuit_host.toolchain.python_build import build_python_circuit

HERE = Path(__file__).resolve().parent
EXAMPLE = HERE.parents[1] / "examples" / "virtual_lpr_py"


@pytest.fixture(scope="session")
def component_runtime(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Runtime]:
    with Runtime(tmp_path_factory.mktemp("component-cache")) as runtime:
        yield runtime


@pytest.fixture(scope="session")
def py_wasm(tmp_path_factory: pytest.TempPathFactory) -> Path:
    source = tmp_path_factory.mktemp("py-circuit")
    shutil.copy(EXAMPLE / "circuit.py", source / "vlpr.py")
    shutil.copy(HERE / "hostile.py", source / "circuit.py")
    return build_python_circuit(source, tmp_path_factory.mktemp("py-build") / "circuit.wasm")


@pytest.fixture(scope="session")
def py_vlpr(component_runtime: Runtime, py_wasm: Path) -> CircuitComponent:
    return component_runtime.load_file(py_wasm)
