"""The coverage reader on hostile tests.wasm: refusals are quick, small and `DecodeError`s, never hangs or crashes.

Reproduces issue 11 item 3 (a 1 KB module whose `.debug_line` asked for millions of entries grew the server by
300 MB; a 200 KB LEB128 took 2.2 s) and fuzzes the wasm reader, the line-table reader and LEB128. The fuzz budget
is small here; `CIRCUIT_FUZZ_EXAMPLES=20000` runs it for longer (see coverage/README.md).
"""

from __future__ import annotations

import contextlib
import os
import time
import tracemalloc
from collections.abc import Callable
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from circuit_host.coverage import CoverageReport, DecodeError, FileCoverage, LineTable, Module, instrument
from circuit_host.coverage._leb import read_count, read_s, read_u, write_u
from circuit_host.errors import Rejected

from .conftest import validator, wat

EXAMPLES = int(os.environ.get("CIRCUIT_FUZZ_EXAMPLES", "150"))
FUZZ = settings(
    max_examples=EXAMPLES,
    deadline=2000,  # ms per example: a parse that hangs fails instead of stalling the suite
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)
FUZZ_REAL_BUILD = settings(FUZZ, max_examples=max(1, EXAMPLES // 6))  # each example parses a whole Debug build


def custom_section(name: str, payload: bytes) -> bytes:
    body = write_u(len(name)) + name.encode() + payload
    return b"\x00" + write_u(len(body)) + body


def v5_unit(tables: bytes, program: bytes = b"") -> bytes:
    """A DWARF 5 line-number unit with the given directory and file tables (standard opcode lengths of LLVM)."""
    opcode_base, line_base, line_range = 13, -5, 14
    lengths = bytes([0, 1, 1, 1, 1, 0, 0, 0, 1, 0, 0, 1])
    params = bytes([1, 1, 1, line_base & 0xFF, line_range, opcode_base]) + lengths + tables
    body = (5).to_bytes(2, "little") + bytes([4, 0]) + len(params).to_bytes(4, "little") + params + program
    return len(body).to_bytes(4, "little") + body


def bomb_tables(count: int, with_path: bool) -> bytes:
    """Directory table with `count` entries in a handful of bytes: no formats (entries of zero bytes), or a path."""
    formats = bytes([1]) + write_u(1) + write_u(0x08) if with_path else bytes([0])
    return formats + write_u(count) + b"a\x00"


def measured(action: Callable[[], object]) -> tuple[BaseException | None, float, int]:
    """(exception raised, seconds, peak bytes allocated) of one call."""
    tracemalloc.start()
    started = time.perf_counter()
    try:
        action()
        error: BaseException | None = None
    except Exception as exc:
        error = exc
    seconds = time.perf_counter() - started
    peak = tracemalloc.get_traced_memory()[1]
    tracemalloc.stop()
    return error, seconds, peak


@pytest.mark.parametrize("count", [2**60, 2**32 - 1, 4_000_000])
@pytest.mark.parametrize("with_path", [False, True])
def test_a_tiny_tests_wasm_asking_for_millions_of_line_entries_is_refused_quickly(count: int, with_path: bool) -> None:
    wasm = wat("(module (func))") + custom_section(".debug_line", v5_unit(bomb_tables(count, with_path)))
    assert len(wasm) < 100
    error, seconds, peak = measured(lambda: LineTable.from_wasm(wasm, validator()))
    assert isinstance(error, DecodeError) and isinstance(error, Rejected)
    assert ".debug_line" in str(error) or "LEB128" in str(error)
    assert seconds < 0.5
    assert peak < 1_000_000


def test_line_rows_are_capped_by_the_input_and_a_deadline() -> None:
    program = b"\x0d" * 200_000  # 200,000 special opcodes: one row each, as many as there are bytes
    unit = v5_unit(bomb_tables(1, True) + b"\x00\x00", program)  # one directory, no files
    assert len(LineTable.parse(unit).sequences) == 0  # no end_sequence: rows are built, then left unfinished
    from circuit_host.coverage._budget import ParseBudget

    with pytest.raises(DecodeError, match="entries"):
        LineTable.parse(unit, budget=ParseBudget(".debug_line", 1000))
    with pytest.raises(DecodeError, match="deadline"):
        LineTable.parse(unit, budget=ParseBudget(".debug_line", len(unit), seconds=0))


def test_a_unit_longer_than_its_section_is_refused() -> None:
    unit = v5_unit(bomb_tables(1, True), b"\x01")
    with pytest.raises(DecodeError, match="claims"):
        LineTable.parse((10**6).to_bytes(4, "little") + unit[4:])
    with pytest.raises(DecodeError, match="claims"):
        LineTable.parse(b"\xff\xff\xff\xff" + (2**60).to_bytes(8, "little") + unit[4:])


def _decode_all(data: bytes) -> None:
    pos = 0
    while pos < len(data):
        _, pos = read_u(data, pos)


def _leb_heavy(size: int) -> bytes:
    """`size` bytes of ten-byte LEB128s, the longest a 64-bit value may take."""
    one = b"\xff" * 8 + b"\x80\x00"
    return one * (size // len(one))


def test_leb128_is_linear_and_bounded() -> None:
    small, large = _leb_heavy(200_000), _leb_heavy(400_000)
    started = time.perf_counter()
    _decode_all(small)
    small_s = time.perf_counter() - started
    started = time.perf_counter()
    _decode_all(large)
    large_s = time.perf_counter() - started
    assert small_s < 0.2 and large_s < 0.5
    assert large_s < 3 * small_s + 0.02
    # One 200 KB LEB128 (the 2.2 s of the issue) stops at its eleventh byte.
    endless = b"\x80" * 200_000 + b"\x00"
    error, seconds, _ = measured(lambda: read_u(endless, 0))
    assert isinstance(error, DecodeError) and "10 bytes" in str(error) and seconds < 0.01
    with pytest.raises(DecodeError, match="5 bytes"):
        read_u(endless, 0, bits=32)
    with pytest.raises(DecodeError, match="overflows an unsigned 32-bit"):
        read_u(write_u(2**32), 0, bits=32)
    with pytest.raises(DecodeError, match="overflows a signed 64-bit"):
        read_s(b"\xff" * 9 + b"\x01", 0)
    with pytest.raises(DecodeError, match="truncated"):
        read_u(b"\x80\x80", 0)
    with pytest.raises(DecodeError, match="exceeds the 2 bytes"):
        read_count(write_u(3) + b"ab", 0, "test")


def test_invalid_wasm_is_refused_before_the_reader_parses_it(monkeypatch: pytest.MonkeyPatch) -> None:
    def must_not_parse(wasm: bytes) -> Module:
        raise AssertionError("parsed before validation")

    valid = wat('(module (func (export "f")))')
    invalid = valid + custom_section(".debug_line", b"") + b"\x0a\x01"  # a second, truncated code section
    monkeypatch.setattr(Module, "parse", staticmethod(must_not_parse))
    for read in (lambda: instrument(invalid, validator()), lambda: LineTable.from_wasm(invalid, validator())):
        with pytest.raises(DecodeError, match="invalid WebAssembly"):
            read()


def test_an_invalid_tests_wasm_is_rejected_by_the_test_session(tmp_path: Path) -> None:
    from circuit_host.testing import run_test_module

    with pytest.raises(Rejected, match="invalid WebAssembly"):
        run_test_module(b"\x00asm\x01\x00\x00\x00\x0a\x05", None, tmp_path, coverage_of=lambda path: True)


def test_a_huge_line_number_renders_without_walking_the_gap() -> None:
    report = CoverageReport({"/a.zig": FileCoverage("/a.zig", {3: 1, 2**62: 0})})
    started = time.perf_counter()
    page = report.to_html(sources={"/a.zig": "x\ny\nz\n"})
    assert time.perf_counter() - started < 0.1
    assert str(2**62) in page


# -- fuzzing ---------------------------------------------------------------------------------------------------


def mutated(original: bytes) -> st.SearchStrategy[bytes]:
    """`original` with some bytes overwritten, a slice cut out or repeated, or its tail cut off."""
    edits = st.lists(st.tuples(st.integers(0, len(original) - 1), st.integers(0, 255)), max_size=8)

    def apply(edit: list[tuple[int, int]], cut: tuple[int, int], how: int) -> bytes:
        data = bytearray(original)
        for at, value in edit:
            data[at] = value
        a, b = sorted(cut)
        if how == 1:
            del data[a:b]
        elif how == 2:
            data[a:a] = data[a:b]
        elif how == 3:
            del data[b:]
        return bytes(data)

    positions = st.tuples(st.integers(0, len(original)), st.integers(0, len(original)))
    return st.builds(apply, edits, positions, st.integers(0, 3))


@FUZZ
@given(st.binary(max_size=64), st.integers(0, 8), st.sampled_from([32, 64]))
def test_fuzz_leb128(data: bytes, pos: int, bits: int) -> None:
    for read in (read_u, read_s):
        try:
            value, end = read(data, pos, bits)
        except DecodeError:
            continue
        assert pos < end <= min(len(data), pos + 10)
        assert -(2**bits) < value < 2**bits


def _reads_or_refuses(action: Callable[[], object]) -> None:
    started = time.perf_counter()
    with contextlib.suppress(DecodeError):
        action()
    assert time.perf_counter() - started < 1.5


@FUZZ
@given(st.binary(max_size=512))
def test_fuzz_line_table_on_random_bytes(data: bytes) -> None:
    _reads_or_refuses(lambda: LineTable.parse(data, data[:64], data[-64:]))


@FUZZ_REAL_BUILD
@given(data=st.data())
def test_fuzz_line_table_of_a_real_debug_build(zig_debug: tuple[Path, bytes], data: st.DataObject) -> None:
    lines = Module.parse(zig_debug[1]).custom_payload(".debug_line")
    assert lines is not None
    _reads_or_refuses(lambda: LineTable.parse(data.draw(mutated(lines[:4096]))))
    _reads_or_refuses(lambda: LineTable.parse(data.draw(mutated(lines))))


def _read_module(wasm: bytes) -> None:
    module = Module.parse(wasm)
    module.function_bodies()
    module.function_names()
    module.memory_count()
    for section in module.sections:
        _ = section.custom_name


@FUZZ
@given(st.binary(max_size=512))
def test_fuzz_wasm_reader_on_random_bytes(data: bytes) -> None:
    _reads_or_refuses(lambda: _read_module(b"\x00asm\x01\x00\x00\x00" + data))


@FUZZ_REAL_BUILD
@given(data=st.data())
def test_fuzz_wasm_reader_of_a_real_debug_build(zig_debug: tuple[Path, bytes], data: st.DataObject) -> None:
    wasm = zig_debug[1]
    _reads_or_refuses(lambda: _read_module(data.draw(mutated(wasm))))


@FUZZ_REAL_BUILD
@given(data=st.data())
def test_fuzz_instrument_and_line_table_behind_the_validator(
    zig_debug: tuple[Path, bytes], data: st.DataObject
) -> None:
    wasm = data.draw(mutated(zig_debug[1]))
    _reads_or_refuses(lambda: instrument(wasm, validator()))
    _reads_or_refuses(lambda: LineTable.from_wasm(wasm, validator()))
