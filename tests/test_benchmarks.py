"""The benchmarks are not run by the suite (they time things); this keeps them from rotting: each
imports, and every function the Python-guest profile wraps still exists where it is wrapped."""

from __future__ import annotations

import importlib.util
from pathlib import Path
from types import ModuleType

import pytest

BENCHMARKS = Path(__file__).resolve().parents[1] / "benchmarks"


def load(name: str) -> ModuleType:
    spec = importlib.util.spec_from_file_location(f"bench_{name}", BENCHMARKS / f"{name}.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.mark.parametrize("name", sorted(p.stem for p in BENCHMARKS.glob("bench_*.py")))
def test_every_benchmark_imports_and_has_a_main(name: str) -> None:
    assert callable(load(name).main)


def test_the_python_guest_profile_wraps_functions_that_exist() -> None:
    bench = load("bench_python_guest")
    for owner, attribute, _label in bench.BREAKDOWN:
        assert callable(getattr(owner, attribute)), f"{owner}.{attribute}"
