"""The instrumenter: exact blocks on hand-written WAT, fidelity to the original, validity of what it writes."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest
import wasmtime

from circuit_host.coverage import (
    COUNTERS_EXPORT,
    DecodeError,
    Module,
    UnknownOpcode,
    instrument,
    read_counters,
)
from circuit_host.coverage._leb import read_s, read_u, write_s, write_u
from circuit_host.sandbox.engine import make_engine

from .conftest import code_offsets, validator, wat

KNOWN = """
(module
  (func $abs (export "abs") (param i32) (result i32)
    local.get 0
    i32.const 0
    i32.lt_s
    if (result i32)
      i32.const 0
      local.get 0
      i32.sub
    else
      local.get 0
    end)
  (func $count (export "count") (param i32) (result i32) (local i32)
    block
      loop
        local.get 0
        i32.eqz
        br_if 1
        local.get 1
        i32.const 1
        i32.add
        local.set 1
        local.get 0
        i32.const 1
        i32.sub
        local.set 0
        br 0
      end
    end
    local.get 1))
"""

# Indices of the instructions that start a block, per function (the final `end` counts as an instruction).
KNOWN_BLOCK_STARTS = [
    [0, 4, 8, 10],  # entry; then-arm (after `if`); else-arm (after `else`); after the if's `end`
    [0, 2, 5, 14, 15, 16],  # entry; loop head; after br_if; dead `end` after `br`; block `end`; after block
]

FIDELITY = """
(module
  (type $bin (func (param i32 i32) (result i32)))
  (import "env" "double" (func $double (param i32) (result i32)))
  (memory (export "memory") 1 2)
  (global $g (mut i32) (i32.const 7))
  (table 2 funcref)
  (elem (i32.const 0) $add $sub)
  (data (i32.const 16) "hello")
  (func $add (type $bin) (i32.add (local.get 0) (local.get 1)))
  (func $sub (type $bin) (i32.sub (local.get 0) (local.get 1)))
  (func (export "dispatch") (param i32 i32 i32) (result i32)
    (call_indirect (type $bin) (local.get 1) (local.get 2) (local.get 0)))
  (func (export "switch") (param i32) (result i32)
    block block block
      local.get 0
      br_table 0 1 2
    end
    i32.const 10
    return
    end
    i32.const 20
    return
    end
    i32.const 30)
  (func (export "div") (param i32 i32) (result i32) (i32.div_s (local.get 0) (local.get 1)))
  (func (export "mem") (param i32) (result i32)
    (i32.store (i32.const 100) (local.get 0))
    (memory.fill (i32.const 200) (i32.const 0xAB) (i32.const 8))
    (memory.copy (i32.const 300) (i32.const 16) (i32.const 5))
    (drop (memory.grow (i32.const 1)))
    (i32.add (i32.load (i32.const 100)) (i32.add (memory.size) (i32.load8_u (i32.const 304)))))
  (func (export "oob") (param i32) (result i32) (i32.load (local.get 0)))
  (func (export "global") (param i32) (result i32)
    (global.set $g (i32.add (global.get $g) (local.get 0)))
    (global.get $g))
  (func (export "pick") (param i32 i32 i32) (result i32) (select (local.get 0) (local.get 1) (local.get 2)))
  (func (export "wide") (param i64) (result i64) (i64.extend32_s (i64.mul (local.get 0) (i64.const 3))))
  (func (export "sat") (param f32) (result i32) (i32.trunc_sat_f32_s (local.get 0)))
  (func (export "multi") (param i32) (result i32)
    (local.get 0)
    (i32.const 2)
    (block (param i32 i32) (result i32 i32) (i32.add) (i32.const 5))
    (i32.mul))
  (func (export "imported") (param i32) (result i32) (call $double (local.get 0)))
  (func (export "refs") (param i32) (result i32)
    (table.set (i32.const 1) (ref.null func))
    (i32.add
      (i32.add (ref.is_null (table.get (local.get 0))) (table.size))
      (ref.is_null (ref.func $add))))
  (func (export "simd") (param i32) (result i32)
    (v128.store (i32.const 400)
      (i8x16.shuffle 0 1 2 3 4 5 6 7 8 9 10 11 12 13 14 15 (i32x4.splat (local.get 0)) (v128.const i32x4 1 2 3 4)))
    (i32x4.extract_lane 2 (i32x4.add (v128.load (i32.const 400)) (v128.const i32x4 1 2 3 4))))
  (func (export "early") (param i32) (result i32)
    (if (i32.gt_s (local.get 0) (i32.const 0)) (then (return (i32.const 1))))
    (if (i32.eqz (local.get 0)) (then unreachable))
    (i32.const 2)))
"""

FIDELITY_CALLS: list[tuple[str, tuple[object, ...]]] = [
    ("dispatch", (0, 7, 5)),
    ("dispatch", (1, 7, 5)),
    ("dispatch", (2, 7, 5)),  # undefined table element: trap
    ("dispatch", (-1, 7, 5)),  # out of table bounds: trap
    *[("switch", (n,)) for n in (0, 1, 2, 3, -1)],
    ("div", (7, 2)),
    ("div", (7, 0)),  # integer divide by zero
    ("div", (-(2**31), -1)),  # integer overflow
    ("mem", (41,)),
    ("oob", (65534,)),  # out of bounds
    ("oob", (16,)),
    ("global", (5,)),
    ("pick", (1, 2, 0)),
    ("pick", (1, 2, 9)),
    ("wide", (2**40,)),
    ("sat", (3.9e12,)),
    ("sat", (-2.5,)),
    ("multi", (4,)),
    ("imported", (21,)),
    *[("early", (n,)) for n in (5, 0, -5)],
    *[("refs", (n,)) for n in (0, 1, 7)],  # 7: out of table bounds
    ("simd", (39,)),
]


def call(engine: wasmtime.Engine, wasm: bytes, export: str, args: tuple[object, ...]) -> tuple[object, bytes, bytes]:
    """(result or trap message, memory 0 afterwards, counter bytes) of one call in a fresh store."""
    store = wasmtime.Store(engine)
    module = wasmtime.Module(engine, wasm)
    imports: list[wasmtime.Func] = []
    if module.imports:
        i32 = wasmtime.ValType.i32()
        imports.append(wasmtime.Func(store, wasmtime.FuncType([i32], [i32]), lambda x: 2 * x))
    instance = wasmtime.Instance(store, module, list(imports))
    exports = instance.exports(store)
    func = exports[export]
    assert isinstance(func, wasmtime.Func)
    try:
        outcome: object = func(store, *args)
    except wasmtime.Trap as trap:
        outcome = ("trap", trap.trap_code)
    memory = exports.get("memory")
    guest_memory = bytes(memory.read(store, 0, memory.data_len(store))) if isinstance(memory, wasmtime.Memory) else b""
    counters = read_counters(store, instance) if COUNTERS_EXPORT in exports else b""
    return outcome, guest_memory, counters


def test_blocks_start_exactly_where_control_flow_says(wasm_tools: str) -> None:
    wasm = wat(KNOWN)
    result = instrument(wasm, validator())
    printed = code_offsets(wasm_tools, wasm)
    expected = [
        (func_index, printed[func_index][i][0]) for func_index, starts in enumerate(KNOWN_BLOCK_STARTS) for i in starts
    ]
    assert [(b.func_index, b.code_offset) for b in result.blocks] == expected
    assert [b.index for b in result.blocks] == list(range(len(expected)))
    for block, following in zip(result.blocks, result.blocks[1:], strict=False):
        if block.func_index == following.func_index:
            assert block.end_offset == following.code_offset
    assert [f.name for f in result.functions] == ["abs", "count"]
    assert result.blocks[-1].end_offset == result.functions[-1].end


@pytest.mark.parametrize(
    ("export", "arg", "hit"),
    [
        ("abs", -5, {0, 1, 3}),
        ("abs", 5, {0, 2, 3}),
        ("count", 0, {4, 5, 9}),  # br_if leaves at once: the loop body and both dead `end`s stay unhit
        ("count", 3, {4, 5, 6, 9}),
    ],
)
def test_counters_record_exactly_the_blocks_a_call_ran(
    engine: wasmtime.Engine, export: str, arg: int, hit: set[int]
) -> None:
    result = instrument(wat(KNOWN), validator())
    outcome, _, counters = call(engine, result.wasm, export, (arg,))
    assert outcome == (abs(arg) if export == "abs" else arg)
    assert {i for i in range(len(result.blocks)) if counters[i]} == hit
    assert set(counters[: len(result.blocks)]) <= {0, 1}


def test_instrumented_module_computes_what_the_original_does(engine: wasmtime.Engine) -> None:
    original = wat(FIDELITY)
    instrumented = instrument(original, validator()).wasm
    traps = 0
    for export, args in FIDELITY_CALLS:
        before, memory_before, _ = call(engine, original, export, args)
        after, memory_after, counters = call(engine, instrumented, export, args)
        assert after == before, (export, args)
        assert memory_after == memory_before, (export, args)
        assert counters[0:1] != b"" and any(counters)
        traps += isinstance(before, tuple)
    assert traps == 7


def test_zig_debug_build_behaves_the_same_including_panics(
    engine: wasmtime.Engine, zig_debug: tuple[Path, bytes]
) -> None:
    _, original = zig_debug
    instrumented = instrument(original, validator()).wasm
    outcomes = []
    for x in (-1, 0, 5, 100, 100001, 70000):  # 70000: the sum overflows i32 and Zig's safety check panics
        before = call(engine, original, "classify", (x,))
        after = call(engine, instrumented, "classify", (x,))
        assert after[:2] == before[:2]
        outcomes.append(before[0])
    assert outcomes[:5] == [0, 0, 10, 4950, 3]
    assert isinstance(outcomes[5], tuple)


def test_output_is_valid_for_the_host_engine_and_for_wasm_tools(
    wasm_tools: str, zig_debug: tuple[Path, bytes], tmp_path: Path
) -> None:
    host_engine = make_engine()
    for wasm in (wat(KNOWN), wat(FIDELITY), zig_debug[1]):
        output = instrument(wasm, validator()).wasm
        wasmtime.Module(host_engine, output)
        path = tmp_path / "out.wasm"
        path.write_bytes(output)
        subprocess.run([wasm_tools, "validate", "--features", "all", str(path)], check=True)


def test_stale_dwarf_is_dropped_unless_kept(zig_debug: tuple[Path, bytes]) -> None:
    original = Module.parse(zig_debug[1])
    debug = [s for s in original.sections if (s.custom_name or "").startswith(".debug_")]
    assert debug
    dropped = Module.parse(instrument(zig_debug[1], validator()).wasm)
    assert not any((s.custom_name or "").startswith(".debug_") for s in dropped.sections)
    assert dropped.custom("name") is not None  # function names stay: indices did not change
    kept = Module.parse(instrument(zig_debug[1], validator(), keep_debug_sections=True).wasm)
    assert [s.payload for s in kept.sections if s.custom_name in {x.custom_name for x in debug}] == [
        s.payload for s in debug
    ]


def test_guest_memory_and_indices_are_untouched() -> None:
    original = wat(FIDELITY)
    result = instrument(original, validator())
    before, after = Module.parse(original), Module.parse(result.wasm)
    changed = {5, 7, 10}  # memory, export, code
    assert [(s.id, s.payload) for s in before.sections if s.id not in changed] == [
        (s.id, s.payload) for s in after.sections if s.id not in changed
    ]
    assert result.memory_index == 1
    module = wasmtime.Module(make_engine(), result.wasm)
    exports = {e.name: e.type for e in module.exports}
    original_exports = {e.name: e.type for e in wasmtime.Module(make_engine(), original).exports}
    assert set(exports) == set(original_exports) | {COUNTERS_EXPORT}
    memory_type = exports[COUNTERS_EXPORT]
    assert isinstance(memory_type, wasmtime.MemoryType)
    assert memory_type.limits.min == 1 and memory_type.limits.max == 1


@pytest.mark.parametrize(
    ("text", "memory_index"),
    [
        ('(module (func (export "f") (result i32) (i32.const 1)))', 0),  # no memory, no other export section
        ('(module (import "env" "mem" (memory 1)) (func (export "f") (result i32) (i32.load (i32.const 0))))', 1),
        ("(module (func $f))", 0),  # no export section at all
    ],
)
def test_modules_without_a_memory_of_their_own(engine: wasmtime.Engine, text: str, memory_index: int) -> None:
    result = instrument(wat(text), validator())
    assert result.memory_index == memory_index
    module = wasmtime.Module(engine, result.wasm)
    assert COUNTERS_EXPORT in {e.name for e in module.exports}
    store = wasmtime.Store(engine)
    imports: list[wasmtime.Memory] = []
    if module.imports:
        imports.append(wasmtime.Memory(store, wasmtime.MemoryType(wasmtime.Limits(1, None))))
    instance = wasmtime.Instance(store, module, list(imports))
    func = instance.exports(store).get("f")
    if isinstance(func, wasmtime.Func):
        func(store)
        assert read_counters(store, instance, 1) == b"\x01"


def _nop_module_with(replacement: bytes) -> tuple[bytes, int]:
    wasm = wat('(module (func) (func (export "f") nop))')
    code = Module.parse(wasm).section(10)
    assert code is not None
    offset = Module.parse(wasm).function_bodies()[1].instructions[0].offset
    at = code.offset + offset
    assert wasm[at] == 0x01
    patched = bytearray(wasm[:at] + replacement + wasm[at + 1 :])
    # Fix the body size and the section size: the replacement may be longer than the nop.
    grow = len(replacement) - 1
    body_size_at = code.offset + Module.parse(wasm).function_bodies()[1].entry
    patched[body_size_at] += grow
    patched[code.offset - 1] += grow
    return bytes(patched), offset


@pytest.mark.parametrize("replacement", [b"\x06", b"\xfc\x63", b"\xfe\x7f"])
def test_unknown_opcode_is_a_clear_error(replacement: bytes) -> None:
    wasm, offset = _nop_module_with(replacement)
    with pytest.raises(UnknownOpcode, match=rf"function 1: unknown opcode .* at code section offset {offset}\b"):
        Module.parse(wasm).function_bodies()
    with pytest.raises(DecodeError, match="invalid WebAssembly"):  # wasmtime refuses it before our decoder runs
        instrument(wasm, validator())


def test_a_module_is_instrumented_once() -> None:
    once = instrument(wat(KNOWN), validator()).wasm
    with pytest.raises(DecodeError, match="instrumented twice"):
        instrument(once, validator())


@pytest.mark.parametrize("value", [0, 1, 63, 64, 127, 128, 624485, 2**32 - 1, 2**62])
def test_leb128_round_trips(value: int) -> None:
    assert read_u(write_u(value), 0) == (value, len(write_u(value)))
    for signed in (value, -value, -value - 1):
        assert read_s(write_s(signed), 0) == (signed, len(write_s(signed)))
    assert write_u(624485) == bytes([0xE5, 0x8E, 0x26])
    assert write_s(-123456) == bytes([0xC0, 0xBB, 0x78])


def test_counters_need_an_instrumented_instance(engine: wasmtime.Engine) -> None:
    store = wasmtime.Store(engine)
    instance = wasmtime.Instance(store, wasmtime.Module(engine, wat("(module)")), [])
    with pytest.raises(LookupError, match=COUNTERS_EXPORT):
        read_counters(store, instance)
