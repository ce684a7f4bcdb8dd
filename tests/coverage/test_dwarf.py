"""`.debug_line` parsing: the Zig (DWARF 4) table of a Debug build, a DWARF 5 table, and the offset convention."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import wasmtime

from circuit_host.coverage import CoverageReport, LineTable, Module, instrument, read_counters

from .conftest import validator, wat


def live_rows(wasm: bytes, table: LineTable) -> list[tuple[int, str, int]]:
    """Rows inside function bodies: dead code that the linker tombstoned (address 0xffffffff) is left out."""
    bodies = Module.parse(wasm).function_bodies()
    return [
        (row.address, row.file, row.line)
        for row in table.rows()
        if any(b.locals_start <= row.address < b.end for b in bodies)
    ]


def test_zig_rows_fall_on_instruction_starts_in_code_section_relative_offsets(zig_debug: tuple[Path, bytes]) -> None:
    _, wasm = zig_debug
    table = LineTable.from_wasm(wasm, validator())
    bodies = Module.parse(wasm).function_bodies()
    starts = {i.offset for b in bodies for i in b.instructions} | {b.locals_start for b in bodies}
    rows = live_rows(wasm, table)
    assert len(rows) > 10
    assert all(address in starts for address, _, _ in rows)
    # Each function's line sequence starts where its locals are declared (DW_AT_low_pc), not at the size prefix.
    assert {b.locals_start for b in bodies} <= {seq[0].address for seq in table.sequences}


def test_lookup_agrees_with_wasm_tools_addr2line(wasm_tools: str, zig_debug: tuple[Path, bytes]) -> None:
    _, wasm = zig_debug
    table = LineTable.from_wasm(wasm, validator())
    addresses = sorted({address for address, _, line in live_rows(wasm, table)})
    printed = subprocess.run(
        [wasm_tools, "addr2line", "--code-section-relative", "-", *map(str, addresses)],
        input=wasm,
        capture_output=True,
        check=True,
    ).stdout.decode()
    theirs: dict[int, tuple[str, int]] = {}
    for line in printed.splitlines():
        match = re.match(r"(\d+): .* (\S+):(\d+):\d+$", line)
        if match and int(match.group(1)) not in theirs:
            theirs[int(match.group(1))] = (match.group(2), int(match.group(3)))
    assert len(theirs) > 10
    for address, (their_path, their_line) in theirs.items():
        found = table.lookup(address)
        assert found is not None
        assert found[1] == their_line
        assert Path(their_path).name == Path(found[0]).name


def test_zig_function_lines_are_attributed_and_an_untaken_branch_is_unhit(zig_debug: tuple[Path, bytes]) -> None:
    source, wasm = zig_debug
    instrumented = instrument(wasm, validator())
    engine = wasmtime.Engine(_multi_memory())
    store = wasmtime.Store(engine)
    instance = wasmtime.Instance(store, wasmtime.Module(engine, instrumented.wasm), [])
    classify = instance.exports(store)["classify"]
    assert isinstance(classify, wasmtime.Func)
    assert classify(store, 5) == 10
    report = CoverageReport.from_counters(
        instrumented, read_counters(store, instance), LineTable.from_wasm(wasm, validator())
    )

    sample = next(cov for path, cov in report.files.items() if Path(path).name == source.name)
    assert sample.lines == {1: 1, 2: 1, 3: 0, 5: 1, 6: 1, 7: 1, 8: 1, 10: 1, 13: 0, 14: 0}
    assert (sample.lines_found, sample.lines_hit, round(sample.percent)) == (10, 7, 70)
    by_name = {f.name: f for f in report.functions}
    assert (by_name["sample.classify"].line, by_name["sample.classify"].hits) == (1, 1)
    assert (by_name["sample.never_called"].line, by_name["sample.never_called"].hits) == (13, 0)
    assert report.functions_without_lines == []


def _multi_memory() -> wasmtime.Config:
    config = wasmtime.Config()
    config.wasm_multi_memory = True
    return config


def test_dwarf5_table_generated_by_wasm_tools(wasm_tools: str, tmp_path: Path) -> None:
    source = tmp_path / "t.wat"
    source.write_text(
        '(module\n  (func (export "f") (param i32) (result i32)\n    local.get 0\n    i32.const 1\n    i32.add))\n'
    )
    out = tmp_path / "t.wasm"
    subprocess.run([wasm_tools, "parse", "-g", str(source), "-o", str(out)], check=True)
    wasm = out.read_bytes()
    lines = Module.parse(wasm).custom_payload(".debug_line")
    assert lines is not None and int.from_bytes(lines[4:6], "little") == 5
    table = LineTable.from_wasm(wasm, validator())
    assert {Path(row.file).name for row in table.rows()} == {"t.wat"}
    assert {row.line for row in table.rows()} == {3, 4, 5}


def _uleb(value: int) -> bytes:
    out = bytearray()
    while True:
        byte, value = value & 0x7F, value >> 7
        out.append(byte | (0x80 if value else 0))
        if not value:
            return bytes(out)


def test_dwarf5_file_table_forms_line_strp_udata_data16() -> None:
    line_str = b"/work/src\x00main.zig\x00"
    # directory format: path as line_strp; file format: path as string, directory index as udata, MD5 as data16
    header_tables = (
        bytes([1]) + _uleb(1) + _uleb(0x1F) + _uleb(1) + (0).to_bytes(4, "little")
        + bytes([3]) + _uleb(1) + _uleb(0x08) + _uleb(2) + _uleb(0x0F) + _uleb(5) + _uleb(0x1E)
        + _uleb(2) + b"lib/a.zig\x00" + _uleb(0) + bytes(16) + b"/abs/b.zig\x00" + _uleb(0) + bytes(range(16))
    )  # fmt: skip
    opcode_base, line_base, line_range = 13, -5, 14
    standard_lengths = bytes([0, 1, 1, 1, 1, 0, 0, 0, 1, 0, 0, 1])
    params = bytes([1, 1, 1, line_base & 0xFF, line_range, opcode_base]) + standard_lengths + header_tables
    program = (
        b"\x04\x00"  # set_file 0 (the file register starts at 1, in DWARF 5 too)
        + b"\x00\x05\x02" + (100).to_bytes(4, "little")  # set_address 100
        + b"\x03" + bytes([9])  # advance_line 9 -> line 10
        + b"\x01"  # copy: (100, a.zig, 10)
        + bytes([opcode_base + (2 - line_base) + 3 * line_range])  # special: address +3, line +2
        + b"\x04\x01"  # set_file 1
        + b"\x02\x04"  # advance_pc 4
        + b"\x03\x7e"  # advance_line -2
        + b"\x01"  # copy: (107, b.zig, 10)
        + b"\x02\x01\x00\x01\x01"  # advance_pc 1; end_sequence at 108
    )  # fmt: skip
    body = (5).to_bytes(2, "little") + bytes([4, 0]) + len(params).to_bytes(4, "little") + params + program
    unit = len(body).to_bytes(4, "little") + body
    table = LineTable.parse(unit, line_str)
    assert [(r.address, r.file, r.line, r.end_sequence) for r in table.sequences[0]] == [
        (100, "/work/src/lib/a.zig", 10, False),
        (103, "/work/src/lib/a.zig", 12, False),
        (107, "/abs/b.zig", 10, False),
        (108, "/abs/b.zig", 10, True),
    ]
    assert table.lookup(105) == ("/work/src/lib/a.zig", 12)
    assert table.lookup(108) is None
    assert LineTable.parse(unit + unit, line_str).rows() == table.rows() * 2


def test_module_without_dwarf_has_an_empty_table() -> None:
    assert LineTable.from_wasm(wat("(module (func))"), validator()).sequences == []
    assert sys.version_info >= (3, 11)
