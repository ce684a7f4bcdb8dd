"""The component binding's fast paths (``circuit_host.abi.component_binding``) convert exactly what
wasmtime-py's generic conversions would: ``list<u8>`` and ``string`` values of every size and
content arrive intact in both directions, and anything the fast paths do not fit (other list
types, other signatures) still goes through wasmtime-py."""

from __future__ import annotations

from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import wasmtime
import wasmtime.component as wc

import circuit_host.sandbox.components
from circuit_host.abi import component_binding
from circuit_host.abi.codec import encode
from circuit_host.abi.component_binding import install_bytes_fast_path, unpatched_converter
from circuit_host.circuitdb import CircuitDB
from circuit_host.errors import QueryError, Rejected
from circuit_host.sandbox.components import CircuitComponent
from circuit_host.sandbox.invocation import Invocation
from circuit_host.sandbox.runtime import Runtime
from tests.contexts import make_context

EDGE_BYTES = [b"", b"\x00", b"\xff", bytes(range(256)), bytes(range(256)) * 1200]  # the last: over the scratch


# -- wasmtime-py's own API, with the list<u8> patch installed ----------------------------------


def echo_component(value_type: str) -> bytes:
    """A component exporting ``echo: func(v: <value_type>) -> <value_type>`` returning its argument
    (a list or a string: both lower to (ptr, len), which the core function stores as the result)."""
    return bytes(
        wasmtime.wat2wasm(f"""(component
  (core module $m
    (memory (export "memory") 1)
    (global $next (mut i32) (i32.const 1024))
    (func (export "realloc") (param i32 i32 i32 i32) (result i32) (local $at i32)
      (local.set $at (i32.and (i32.add (global.get $next) (i32.const 7)) (i32.const -8)))
      (global.set $next (i32.add (local.get $at) (local.get 3)))
      (if (i32.gt_u (global.get $next) (i32.mul (memory.size) (i32.const 65536)))
        (then (drop (memory.grow (i32.add (i32.shr_u (local.get 3) (i32.const 16)) (i32.const 1))))))
      (local.get $at))
    (func (export "echo") (param i32 i32) (result i32)
      (i32.store (i32.const 16) (local.get 0))
      (i32.store (i32.const 20) (local.get 1))
      i32.const 16))
  (core instance $i (instantiate $m))
  (func (export "echo") (param "v" {value_type}) (result {value_type})
    (canon lift (core func $i "echo") (memory (core memory $i "memory")) (realloc (core func $i "realloc")))))""")
    )


@pytest.fixture
def echo() -> Iterator[Any]:
    """Calls a fresh instance's ``echo`` through wasmtime-py's ``Func.__call__``."""
    install_bytes_fast_path()
    engine = wasmtime.Engine()
    compiled: dict[str, wc.Component] = {}

    def call(value_type: str, value: Any) -> Any:
        if value_type not in compiled:
            compiled[value_type] = wc.Component(engine, echo_component(value_type))
        store = wasmtime.Store(engine)
        func = wc.Linker(engine).instantiate(store, compiled[value_type]).get_func(store, "echo")
        assert func is not None
        return func(store, value)

    yield call


@pytest.mark.parametrize("data", EDGE_BYTES, ids=["empty", "zero", "ff", "all-256", "300KB"])
def test_bytes_round_trip_through_the_patched_conversion(echo: Any, data: bytes) -> None:
    assert echo("(list u8)", data) == data


def test_other_lists_are_left_to_wasmtime_py(echo: Any) -> None:
    assert echo("(list u32)", [0, 1, 255, 256, 2**32 - 1]) == [0, 1, 255, 256, 2**32 - 1]
    assert echo("(list u32)", []) == []
    with pytest.raises(TypeError):
        echo("(list u8)", [1, 2, 3])  # a list<u8> takes bytes, as in wasmtime-py


@pytest.mark.parametrize("text", ["", "a", "é€😀 ünïcode", "é€x" * 50_000])
def test_strings_round_trip_through_wasmtime_py(echo: Any, text: str) -> None:
    assert echo("string", text) == text


def test_the_patch_is_installed_once_and_the_original_stays_reachable() -> None:
    install_bytes_fast_path()
    patched = wc.ListType.convert_to_c
    install_bytes_fast_path()
    assert wc.ListType.convert_to_c is patched
    for name in ("ListType.convert_to_c", "ListType.convert_from_c"):
        original = unpatched_converter(name)
        assert original is not getattr(wc.ListType, name.split(".")[1])
        assert not getattr(original, "_circuit_fast_path", False)


# -- through the runtime: the direct paths, and the fallback for other signatures --------------


@dataclass
class Run:
    outcome: Invocation
    logs: list[tuple[str, str]]  # (level, message)


def invoke(runtime: Runtime, loaded: Any, event: bytes, records: CircuitDB | None = None) -> Run:
    with make_context(records, label="fast-path") as context:
        outcome = runtime.invoke(loaded, event, context)
        return Run(outcome, [(entry.level, entry.message) for entry in context.log.entries])


def test_a_handle_of_another_signature_is_rejected_at_load(runtime: Runtime) -> None:
    # handle: func(event: list<u8>) -> list<u8>, returning msgpack 42: not the ABI's signature
    wasm = bytes(
        wasmtime.wat2wasm("""(component
  (core module $m
    (memory (export "memory") 1)
    (func (export "realloc") (param i32 i32 i32 i32) (result i32) i32.const 1024)
    (func (export "handle") (param i32 i32) (result i32)
      (i32.store8 (i32.const 32) (i32.const 42))
      (i32.store (i32.const 16) (i32.const 32))
      (i32.store (i32.const 20) (i32.const 1))
      i32.const 16))
  (core instance $i (instantiate $m))
  (func (export "handle") (param "event" (list u8)) (result (list u8))
    (canon lift (core func $i "handle") (memory (core memory $i "memory")) (realloc (core func $i "realloc")))))""")
    )
    with pytest.raises(Rejected, match=r"export 'handle' is func\(list<u8>\) -> list<u8>, the ABI's is func"):
        runtime.load(wasm)


def test_imports_of_another_signature_are_rejected_at_load(runtime: Runtime) -> None:
    # log.write imported with a string level instead of the ABI's enum: it would fail at every instantiation
    wasm = bytes(
        wasmtime.wat2wasm("""(component
  (import "circuit:script/log@1.0.0" (instance $log
    (export "write" (func (param "level" string) (param "message" string)))))
  (core module $memory (memory (export "memory") 1))
  (core instance $mem (instantiate $memory))
  (core func $write (canon lower (func $log "write") (memory (core memory $mem "memory"))))
  (core module $m
    (import "env" "memory" (memory 1))
    (import "log" "write" (func $write (param i32 i32 i32 i32)))
    (data (i32.const 100) "infoé€ ünïcode")
    (func (export "realloc") (param i32 i32 i32 i32) (result i32) i32.const 1024)
    (func (export "handle") (param i32 i32) (result i32)
      (call $write (i32.const 100) (i32.const 4) (i32.const 104) (i32.const 15))
      (i32.store8 (i32.const 32) (i32.const 0xc0))
      (i32.store (i32.const 16) (i32.const 0))
      (i32.store (i32.const 20) (i32.const 32))
      (i32.store (i32.const 24) (i32.const 1))
      i32.const 16))
  (core instance $i (instantiate $m
    (with "env" (instance (export "memory" (memory $mem "memory"))))
    (with "log" (instance (export "write" (func $write))))))
  (func (export "handle") (param "event" (list u8)) (result (result (list u8) (error string)))
    (canon lift (core func $i "handle") (memory (core memory $mem "memory")) (realloc (core func $i "realloc")))))""")
    )
    with pytest.raises(Rejected, match=r"log@1\.0\.0#write is func\(string, string\), the ABI's is func\(enum"):
        runtime.load(wasm)


# -- through the Python guest: every byte value and every kind of string, both ways ------------


def event(object_name: str, rows: list[dict[str, Any]]) -> bytes:
    return encode({"kind": "trigger", "object": object_name, "operation": "after_insert", "new": rows})


def test_the_python_guest_is_run_through_the_direct_paths(
    component_runtime: Runtime, py_vlpr: CircuitComponent
) -> None:
    plan = py_vlpr.plan
    assert plan.direct_handle and plan.direct_imports


@pytest.mark.parametrize("data", EDGE_BYTES, ids=["empty", "zero", "ff", "all-256", "300KB"])
def test_bytes_values_round_trip_through_handle(
    component_runtime: Runtime, py_vlpr: CircuitComponent, data: bytes
) -> None:
    rows = [{"B": data, "N": len(data)}]
    outcome = invoke(component_runtime, py_vlpr, event("Echo", rows)).outcome
    assert outcome.status == "ok", outcome.error_message
    assert outcome.output == rows


def test_an_empty_event_reaches_the_guest_as_empty_bytes(component_runtime: Runtime, py_vlpr: CircuitComponent) -> None:
    outcome = invoke(component_runtime, py_vlpr, b"").outcome
    assert (outcome.status, outcome.error_kind) == ("error", "guest_error")
    assert outcome.error_message is not None and "MsgpackError" in outcome.error_message


def test_a_one_byte_event_gets_a_one_byte_reply(component_runtime: Runtime, py_vlpr: CircuitComponent) -> None:
    outcome = invoke(component_runtime, py_vlpr, b"\x80").outcome  # {}: no handler matches, the guest returns nil
    assert (outcome.status, outcome.output) == ("ok", None)


TEXTS = ["", "a", "é€😀 ünïcode", "\x00\x7f\u0080\uffff\U0010ffff", "é€x" * 50_000]


@pytest.mark.parametrize("text", TEXTS, ids=["empty", "ascii", "non-ascii", "edges", "300KB"])
def test_strings_reach_the_host_intact(component_runtime: Runtime, py_vlpr: CircuitComponent, text: str) -> None:
    run = invoke(component_runtime, py_vlpr, event("Strings", [{"Text": text}]))
    assert run.outcome.status == "ok", run.outcome.error_message
    assert run.logs == [("info", text)]


@pytest.mark.parametrize("literal", ["", "é€😀 ünïcode", "\U0010ffff" * 3])
def test_strings_reach_the_guest_intact(
    component_runtime: Runtime, py_vlpr: CircuitComponent, records: CircuitDB, literal: str
) -> None:
    soql = f"SELECT Id FROM Contact '{literal}'"  # a syntax error whose message quotes the literal
    tx = records.begin()
    try:
        with pytest.raises(QueryError) as raised:
            tx.query(soql, {}, max_rows=1)
    finally:
        tx.rollback()
        tx.close()
    outcome = invoke(component_runtime, py_vlpr, event("Strings", [{"Text": "q", "Query": soql}]), records).outcome
    assert outcome.status == "ok", outcome.error_message
    assert outcome.output == [str(raised.value)]
    assert literal in str(raised.value)


@pytest.mark.parametrize("text", TEXTS[1:], ids=["ascii", "non-ascii", "edges", "300KB"])
def test_an_err_string_from_handle_arrives_intact(
    component_runtime: Runtime, py_vlpr: CircuitComponent, text: str
) -> None:
    outcome = invoke(component_runtime, py_vlpr, event("Strings", [{"Text": text, "Raise": True}])).outcome
    assert (outcome.status, outcome.error_kind) == ("error", "guest_error")
    assert outcome.error_message is not None and outcome.error_message.startswith(f"ValueError: {text} (at ")


def test_the_direct_and_the_generic_paths_give_the_same_execution(
    monkeypatch: pytest.MonkeyPatch, component_runtime: Runtime, py_wasm: Path, records: CircuitDB
) -> None:
    rows = [{"Text": "é€", "Query": "SELECT Id FROM Contact 'ü'"}, {"Text": "x" * 1000}]
    cache = component_runtime.cache.directory  # the session's compiled component: no recompile

    def run() -> tuple[Any, ...]:
        with Runtime(cache) as runtime:
            done = invoke(runtime, runtime.load_file(py_wasm), event("Strings", rows), records)
        return done.outcome.status, done.outcome.output, done.logs

    direct = run()
    assert direct[0] == "ok"
    generic = component_binding.Plan(None, direct_handle=False, direct_imports=False)
    monkeypatch.setattr(circuit_host.sandbox.components, "plan_for", lambda engine, component, functions: generic)
    assert run() == direct


def test_concurrent_executions_never_see_each_others_bytes(
    component_runtime: Runtime, py_vlpr: CircuitComponent
) -> None:
    # the server runs executions on several threads; the lowering's scratch array is shared
    def run(worker: int) -> list[bool]:
        results = []
        for i in range(4):
            rows = [{"Blob": bytes([worker]) * (5_000 * (i + 1) + worker), "Who": f"{worker}-{i}"}]
            outcome = invoke(component_runtime, py_vlpr, event("Echo", rows)).outcome
            results.append(outcome.status == "ok" and outcome.output == rows)
        return results

    with ThreadPoolExecutor(max_workers=4) as pool:
        outcomes = list(pool.map(run, range(4)))
    assert outcomes == [[True] * 4] * 4
