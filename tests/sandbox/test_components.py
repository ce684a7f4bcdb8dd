"""Components through ``Runtime.load``/``invoke``: import validation and hostile guests, from WAT.

These need no componentize-py build: each is a hand-written component lifting one core function
as ``handle``, so every failure path of the component binding is exercised in milliseconds.
"""

from __future__ import annotations

import pytest
import wasmtime

from circuit_host.errors import Rejected
from circuit_host.execution.limits import LimitsProfile
from circuit_host.sandbox.components import CircuitComponent, defined_memories, is_component
from circuit_host.sandbox.invocation import Invocation
from circuit_host.sandbox.runtime import Runtime
from tests.contexts import make_context

HANDLE_TYPE = '(type $h (func (param "event" (list u8)) (result (result (list u8) (error string)))))'


def component(body: str, imports: str = "", memory_pages: int = 1) -> bytes:
    """A component whose ``handle`` runs ``body`` (a core function of (ptr, len) -> retptr)."""
    return bytes(
        wasmtime.wat2wasm(f"""(component
  {imports}
  (core module $m
    (memory (export "memory") {memory_pages})
    (func (export "realloc") (param i32 i32 i32 i32) (result i32) i32.const 1024)
    (func (export "handle") (param i32 i32) (result i32) {body}))
  (core instance $i (instantiate $m))
  {HANDLE_TYPE}
  (func (export "handle") (type $h)
    (canon lift (core func $i "handle") (memory (core memory $i "memory")) (realloc (core func $i "realloc")))))""")
    )


def invoke(runtime: Runtime, wasm: bytes, limits: LimitsProfile) -> Invocation:
    loaded = runtime.load(wasm)
    assert isinstance(loaded, CircuitComponent)
    with make_context(limits=limits, label="component") as context:
        return runtime.invoke(loaded, b"\x80", context)


def test_components_are_told_apart_from_core_modules() -> None:
    assert is_component(component("i32.const 0"))
    assert not is_component(bytes(wasmtime.wat2wasm("(module)")))
    assert not is_component(b"\0asm")


@pytest.mark.parametrize(
    ("imports", "message"),
    [
        ('(import "wasi:cli/environment@0.2.0" (instance))', "--stub-wasi"),
        ('(import "wasi:filesystem/types@0.2.0" (instance))', "circuits get no WASI"),
        ('(import "circuit:script/records@2.0.0" (instance))', "may import only circuit:script/http@1.0.0"),
        ('(import "circuit:script/testing@1.0.0" (instance))', "circuit:script/testing@1.0.0"),
        ('(import "evil:host/escape" (instance))', "evil:host/escape"),
    ],
)
def test_components_importing_anything_but_the_abi_are_rejected(runtime: Runtime, imports: str, message: str) -> None:
    with pytest.raises(Rejected, match="may import only") as info:
        runtime.load(component("i32.const 0", imports))
    assert message in str(info.value)


def test_a_component_without_handle_is_rejected(runtime: Runtime) -> None:
    with pytest.raises(Rejected, match="exports no 'handle'"):
        runtime.load(bytes(wasmtime.wat2wasm("(component)")))


def test_a_corrupt_component_is_rejected(runtime: Runtime) -> None:
    with pytest.raises(Rejected, match="invalid component"):
        runtime.load(b"\0asm\x0d\x00\x01\x00\x01\xff\xff")


def test_spinning_component_is_stopped_by_the_deadline(runtime: Runtime) -> None:
    outcome = invoke(runtime, component("(loop $l (br $l)) unreachable"), LimitsProfile(timeout_ms=200))
    assert outcome.status == "timeout"


def test_spinning_component_is_stopped_by_fuel(runtime: Runtime) -> None:
    outcome = invoke(runtime, component("(loop $l (br $l)) unreachable"), LimitsProfile(fuel=1_000_000))
    assert (outcome.status, outcome.resource) == ("limit_exceeded", "fuel")


def test_trapping_component_reports_a_trap_and_the_next_execution_is_fresh(runtime: Runtime) -> None:
    wasm = component("unreachable")
    first = invoke(runtime, wasm, LimitsProfile())
    assert first.status == "trap" and first.error_message is not None and "unreachable" in first.error_message
    # a trapped instance poisons itself; a fresh one per execution means the same trap, not "cannot enter"
    second = invoke(runtime, wasm, LimitsProfile())
    assert second == first


def test_result_pointer_out_of_bounds_is_a_trap(runtime: Runtime) -> None:
    outcome = invoke(runtime, component("i32.const 70000"), LimitsProfile())
    assert outcome.status == "trap" and outcome.error_message is not None
    assert "out of bounds" in outcome.error_message


def test_initial_memory_over_the_cap_is_the_memory_limit(runtime: Runtime) -> None:
    outcome = invoke(runtime, component("i32.const 0", memory_pages=64), LimitsProfile(memory_bytes=1024 * 1024))
    assert (outcome.status, outcome.resource) == ("limit_exceeded", "memory_bytes")


def test_well_formed_ok_result_is_decoded(runtime: Runtime) -> None:
    # result at 16: tag 0 (ok), list (ptr 32, len 1) holding msgpack 0x2a = 42
    body = """(i32.store8 (i32.const 32) (i32.const 42))
      (i32.store (i32.const 16) (i32.const 0))
      (i32.store (i32.const 20) (i32.const 32))
      (i32.store (i32.const 24) (i32.const 1))
      i32.const 16"""
    outcome = invoke(runtime, component(body), LimitsProfile())
    assert (outcome.status, outcome.output) == ("ok", 42)


@pytest.mark.parametrize(
    ("imports", "message"),
    [
        ('(import "circuit:script/records@1.0.0" (instance (export "frobnicate" (func))))', "no function 'frobnicate'"),
        (
            '(import "circuit:script/limits@1.0.0" (instance (export "usage" (func (result string)))))',
            "limits@1.0.0#usage is func() -> string, the ABI's is func() -> list<u8>",
        ),
    ],
)
def test_abi_imports_of_the_wrong_shape_are_rejected_at_load(runtime: Runtime, imports: str, message: str) -> None:
    with pytest.raises(Rejected, match="does not match the ABI") as info:
        runtime.load(component("i32.const 0", imports))
    assert message in str(info.value)


def two_memory_component(grow_first: int, grow_second: int) -> bytes:
    """A component whose core module defines two memories and grows each by the pages given,
    trapping if either growth is refused, then returning ok(42)."""
    return bytes(
        wasmtime.wat2wasm(f"""(component
  (core module $m
    (memory (export "memory") 1)
    (memory $second 1)
    (func (export "realloc") (param i32 i32 i32 i32) (result i32) i32.const 1024)
    (func (export "handle") (param i32 i32) (result i32)
      (if (i32.eq (memory.grow $second (i32.const {grow_second})) (i32.const -1)) (then unreachable))
      (if (i32.eq (memory.grow 0 (i32.const {grow_first})) (i32.const -1)) (then unreachable))
      (i32.store8 (i32.const 32) (i32.const 42))
      (i32.store (i32.const 16) (i32.const 0))
      (i32.store (i32.const 20) (i32.const 32))
      (i32.store (i32.const 24) (i32.const 1))
      i32.const 16))
  (core instance $i (instantiate $m))
  {HANDLE_TYPE}
  (func (export "handle") (type $h)
    (canon lift (core func $i "handle") (memory (core memory $i "memory")) (realloc (core func $i "realloc")))))""")
    )


def test_a_components_memories_share_one_cap(runtime: Runtime) -> None:
    """16 memories each capped separately would give a component 16 times the cap (issue 11, #14)."""
    cap = LimitsProfile(memory_bytes=32 * 65536)
    assert defined_memories(two_memory_component(1, 1)) == 2
    assert invoke(runtime, two_memory_component(10, 10), cap).output == 42  # 22 of 32 pages in all
    outcome = invoke(runtime, two_memory_component(20, 20), cap)  # 42 pages: one memory is refused
    assert outcome.status == "trap" and outcome.error_message is not None and "unreachable" in outcome.error_message


def test_a_component_with_one_memory_gets_the_whole_cap(runtime: Runtime) -> None:
    grows = component("""(if (i32.eq (memory.grow (i32.const 30)) (i32.const -1)) (then unreachable))
      (i32.store8 (i32.const 32) (i32.const 42))
      (i32.store (i32.const 16) (i32.const 0))
      (i32.store (i32.const 20) (i32.const 32))
      (i32.store (i32.const 24) (i32.const 1))
      i32.const 16""")
    assert defined_memories(grows) == 1
    assert invoke(runtime, grows, LimitsProfile(memory_bytes=32 * 65536)).output == 42


def test_a_component_instantiating_its_memory_module_twice_is_refused_more_memories(runtime: Runtime) -> None:
    wasm = bytes(
        wasmtime.wat2wasm(f"""(component
  (core module $m
    (memory (export "memory") 1)
    (func (export "realloc") (param i32 i32 i32 i32) (result i32) i32.const 1024)
    (func (export "handle") (param i32 i32) (result i32) i32.const 0))
  (core instance $i (instantiate $m))
  (core instance $again (instantiate $m))
  {HANDLE_TYPE}
  (func (export "handle") (type $h)
    (canon lift (core func $i "handle") (memory (core memory $i "memory")) (realloc (core func $i "realloc")))))""")
    )
    assert defined_memories(wasm) == 1
    outcome = invoke(runtime, wasm, LimitsProfile())
    assert (outcome.status, outcome.resource) == ("limit_exceeded", "memory_bytes")
    assert outcome.error_message is not None and "memory count too high" in outcome.error_message
