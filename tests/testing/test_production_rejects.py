"""The testing interface exists only in test runtimes: production rejects modules that import it."""

from __future__ import annotations

from pathlib import Path

import pytest
import wasmtime

from circuit_host.errors import Rejected
from circuit_host.sandbox.runtime import Runtime
from circuit_host.testing.capability import runtime_for_tests

WAT_IMPORTING_TESTING = """
(module
  (import "circuit:script/testing@1.0.0" "start-test" (func))
  (memory (export "memory") 1)
  (func (export "cabi_realloc") (param i32 i32 i32 i32) (result i32) i32.const 0)
  (func (export "handle") (param i32 i32) (result i32) i32.const 0)
  (func (export "cabi_post_handle") (param i32))
)
"""


def test_production_rejects_the_built_test_module(lab_tests_wasm: Path) -> None:
    with Runtime() as runtime, pytest.raises(Rejected) as caught:
        runtime.load(lab_tests_wasm.read_bytes())
    assert "circuit:script/testing@1.0.0" in str(caught.value)
    assert "testing is linked only into test modules" in str(caught.value)


def test_production_rejects_any_testing_import() -> None:
    wasm = bytes(wasmtime.wat2wasm(WAT_IMPORTING_TESTING))
    with (
        Runtime() as runtime,
        pytest.raises(Rejected, match=r"'circuit:script/testing@1\.0\.0' 'start-test' is not part"),
    ):
        runtime.load(wasm)


def test_only_a_test_runtime_links_testing() -> None:
    with Runtime() as runtime, pytest.raises(wasmtime.WasmtimeError, match="not defined"):
        runtime.linker.get(wasmtime.Store(runtime.engine), "circuit:script/testing@1.0.0", "fail")
    with runtime_for_tests() as runtime:
        assert runtime.linker.get(wasmtime.Store(runtime.engine), "circuit:script/testing@1.0.0", "fail")


def test_a_test_runtime_requires_the_test_exports() -> None:
    wasm = bytes(wasmtime.wat2wasm(WAT_IMPORTING_TESTING))
    with runtime_for_tests() as runtime, pytest.raises(Rejected, match="must export function 'list-tests'"):
        runtime.load(wasm)


def test_a_test_runtime_loads_the_test_module(lab_tests_wasm: Path) -> None:
    with runtime_for_tests() as runtime:
        assert runtime.load(lab_tests_wasm.read_bytes()).sha256
