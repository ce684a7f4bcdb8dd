"""The direct core-module path finds exports by the positions resolved at load and calls them as
wasmtime-py would: same values, same traps."""

from __future__ import annotations

import pytest
import wasmtime

from circuit_host.abi.core_exports import CoreInstance, ExportPositions
from circuit_host.errors import GuestFault

# Exports in an order unlike their definitions, a global and a table among them.
MODULE = """(module
  (func $trap (export "boom") unreachable)
  (memory (export "memory") 1)
  (global (export "g") i32 (i32.const 7))
  (table (export "t") 1 funcref)
  (func (export "add") (param i32 i32) (result i32) (i32.add (local.get 0) (local.get 1)))
  (func (export "store") (param i32 i32) (i32.store (local.get 0) (local.get 1))))
"""


@pytest.fixture
def instance() -> tuple[CoreInstance, wasmtime.Store]:
    engine = wasmtime.Engine()
    module = wasmtime.Module(engine, MODULE)
    store = wasmtime.Store(engine)
    pre = wasmtime.Linker(engine).instantiate_pre(module)
    return CoreInstance(store, pre, ExportPositions.of(module)), store


def test_positions_are_the_order_an_instance_lists_its_exports() -> None:
    engine = wasmtime.Engine()
    module = wasmtime.Module(engine, MODULE)
    store = wasmtime.Store(engine)
    listed = list(wasmtime.Instance(store, module, []).exports(store))
    assert list(ExportPositions.of(module).positions) == listed


def test_calls_pass_signed_i32_values_and_return_the_result(instance: tuple[CoreInstance, wasmtime.Store]) -> None:
    core, store = instance
    add = core.func("add", 2, 1)
    assert add(store, 2, 3) == 5
    assert add(store, -1, 0) == -1
    assert add(store, 0x7FFFFFFF, 1) == -0x80000000  # wraps as wasm does


def test_memory_writes_are_seen_through_the_memory_probe(instance: tuple[CoreInstance, wasmtime.Store]) -> None:
    core, store = instance
    core.func("store", 2, 0)(store, 16, 0x01020304)
    memory = core.memory()
    assert memory.data_len(store) == 65536
    assert bytes(memory.data_ptr(store)[16:20]) == b"\x04\x03\x02\x01"


def test_a_trap_raises_wasmtimes_trap(instance: tuple[CoreInstance, wasmtime.Store]) -> None:
    core, store = instance
    with pytest.raises(wasmtime.Trap) as raised:
        core.func("boom", 0, 0)(store)
    assert raised.value.trap_code == wasmtime.TrapCode.UNREACHABLE


def test_a_missing_export_or_one_of_another_kind_is_a_guest_fault(
    instance: tuple[CoreInstance, wasmtime.Store],
) -> None:
    core, _ = instance
    with pytest.raises(GuestFault, match="'nope'"):
        core.func("nope", 0, 0)
    with pytest.raises(GuestFault, match="'g'"):
        core.func("g", 0, 0)  # a global, not a function


def test_a_wrong_argument_count_is_refused_before_any_call(instance: tuple[CoreInstance, wasmtime.Store]) -> None:
    core, store = instance
    with pytest.raises(TypeError, match="expected 2 arguments, got 1"):
        core.func("add", 2, 1)(store, 1)
