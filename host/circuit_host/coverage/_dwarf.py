"""DWARF `.debug_line` (versions 2 to 5): the map from code offsets to source (file, line).

For wasm, line-table addresses are offsets into the code section payload (see `_binary`). Only what a line
table needs is read: the header with its directory and file tables, and the line-number program.
"""

from __future__ import annotations

import bisect
import posixpath
import struct
from dataclasses import dataclass, field

import wasmtime

from ._binary import Module
from ._budget import ParseBudget
from ._leb import DecodeError, read_count, read_s, read_u

# DW_FORM_* values that may describe v5 directory/file entries.
_FORM_BLOCK, _FORM_DATA1, _FORM_DATA2, _FORM_DATA4, _FORM_DATA8 = 0x09, 0x0B, 0x05, 0x06, 0x07
_FORM_STRING, _FORM_STRP, _FORM_UDATA, _FORM_DATA16, _FORM_LINE_STRP = 0x08, 0x0E, 0x0F, 0x1E, 0x1F
_LNCT_PATH, _LNCT_DIRECTORY_INDEX = 1, 2


@dataclass(frozen=True, slots=True)
class LineRow:
    """One row of the line matrix; `end_sequence` rows only mark where a sequence stops."""

    address: int
    file: str
    line: int
    end_sequence: bool = False


@dataclass
class LineTable:
    """All sequences of all units in `.debug_line`, each a list of rows in address order."""

    sequences: list[list[LineRow]] = field(default_factory=list)

    @classmethod
    def from_wasm(cls, wasm: bytes | bytearray, engine: wasmtime.Engine) -> LineTable:
        """The line table of a module's DWARF; empty when it has no `.debug_line`. `engine` validates it first."""
        module = Module.from_untrusted(wasm, engine)
        lines = module.custom_payload(".debug_line")
        if lines is None:
            return cls()
        return cls.parse(
            lines, module.custom_payload(".debug_line_str") or b"", module.custom_payload(".debug_str") or b""
        )

    @classmethod
    def parse(
        cls, debug_line: bytes, debug_line_str: bytes = b"", debug_str: bytes = b"", budget: ParseBudget | None = None
    ) -> LineTable:
        """Every unit of `.debug_line`; damaged or oversized input raises `DecodeError`, never more."""
        budget = budget or ParseBudget(".debug_line", len(debug_line))
        table = cls()
        pos = 0
        try:
            while pos < len(debug_line):
                pos = _parse_unit(debug_line, pos, debug_line_str, debug_str, table.sequences, budget)
        except (IndexError, struct.error) as exc:
            raise DecodeError(f".debug_line: truncated unit at offset {pos}") from exc
        return table

    def rows(self) -> list[LineRow]:
        """Every row that is a real location (not an end-of-sequence marker, not line 0)."""
        return [row for seq in self.sequences for row in seq if not row.end_sequence and row.line > 0]

    def lookup(self, offset: int) -> tuple[str, int] | None:
        """(file, line) for a code offset, or None when no sequence covers it."""
        for seq in self.sequences:
            if not seq or not seq[0].address <= offset < seq[-1].address:
                continue
            i = bisect.bisect_right([row.address for row in seq], offset) - 1
            row = seq[i]
            return (row.file, row.line) if row.line > 0 else None
        return None


def _cstring(data: bytes, pos: int) -> tuple[str, int]:
    end = data.find(b"\x00", pos)
    if end < 0 or pos < 0:
        raise DecodeError(f".debug_line: string at offset {pos} has no terminating NUL")
    return data[pos:end].decode("utf-8", "replace"), end + 1


def _offset(data: bytes, pos: int, size: int) -> tuple[int, int]:
    if pos + size > len(data):
        raise DecodeError(f".debug_line: {size}-byte field at offset {pos} runs past the end")
    return int.from_bytes(data[pos : pos + size], "little"), pos + size


def _entries(
    data: bytes, pos: int, end: int, offset_size: int, line_str: bytes, debug_str: bytes, budget: ParseBudget
) -> tuple[list[tuple[str, int]], int]:
    """A v5 directory or file table: returns [(path, directory index)]."""
    format_count = data[pos]
    pos += 1
    formats: list[tuple[int, int]] = []
    for _ in range(format_count):
        content, pos = read_u(data, pos)
        form, pos = read_u(data, pos)
        formats.append((content, form))
    # Every entry must take bytes (a path at least), else a count alone could ask for 2**32 of them.
    if not any(content == _LNCT_PATH for content, _ in formats):
        if data[pos] == 0:
            return [], pos + 1
        raise DecodeError(f".debug_line: a v5 directory or file table at offset {pos} has no path format")
    count, pos = read_count(data, pos, ".debug_line v5 directory or file table", end=end)
    budget.charge(count)
    entries: list[tuple[str, int]] = []
    for _ in range(count):
        path, directory = "", 0
        for content, form in formats:
            value: int | str
            if form == _FORM_STRING:
                value, pos = _cstring(data, pos)
            elif form in (_FORM_LINE_STRP, _FORM_STRP):
                ref, pos = _offset(data, pos, offset_size)
                value = _cstring(line_str if form == _FORM_LINE_STRP else debug_str, ref)[0]
            elif form == _FORM_UDATA:
                value, pos = read_u(data, pos)
            elif form in (_FORM_DATA1, _FORM_DATA2, _FORM_DATA4, _FORM_DATA8, _FORM_DATA16):
                size = {_FORM_DATA1: 1, _FORM_DATA2: 2, _FORM_DATA4: 4, _FORM_DATA8: 8, _FORM_DATA16: 16}[form]
                value, pos = _offset(data, pos, size)
            elif form == _FORM_BLOCK:
                size, pos = read_u(data, pos)
                value, pos = 0, pos + size
            else:
                raise DecodeError(f".debug_line: unsupported form 0x{form:x} in a v5 file table at offset {pos}")
            if content == _LNCT_PATH and isinstance(value, str):
                path = value
            elif content == _LNCT_DIRECTORY_INDEX and isinstance(value, int):
                directory = value
        entries.append((path, directory))
    return entries, pos


def _join(directory: str, name: str) -> str:
    path = name if not directory or posixpath.isabs(name) else posixpath.join(directory, name)
    return posixpath.normpath(path) if posixpath.isabs(path) else path


def _parse_unit(
    data: bytes, pos: int, line_str: bytes, debug_str: bytes, out: list[list[LineRow]], budget: ParseBudget
) -> int:
    """Parse one line-number program starting at `pos`; append its sequences; return where the next unit starts."""
    unit_length, pos = _offset(data, pos, 4)
    offset_size = 4
    if unit_length == 0xFFFFFFFF:
        unit_length, pos = _offset(data, pos, 8)
        offset_size = 8
    unit_end = pos + unit_length
    if unit_end > len(data):
        raise DecodeError(f".debug_line: unit at offset {pos} claims {unit_length} bytes, {len(data) - pos} remain")
    data = data[:unit_end]  # nothing of this unit may read into the next
    version, pos = _offset(data, pos, 2)
    if not 2 <= version <= 5:
        raise DecodeError(f".debug_line: unsupported version {version} at offset {pos - 2}")
    if version >= 5:
        pos += 2  # address_size, segment_selector_size
    header_length, pos = _offset(data, pos, offset_size)
    program = pos + header_length
    min_inst = data[pos]
    pos += 2 if version >= 4 else 1  # maximum_operations_per_instruction (VLIW only) is ignored
    # data[pos] is default_is_stmt: every row counts, statement or not.
    line_base = struct.unpack_from("<b", data, pos + 1)[0]
    line_range = data[pos + 2]
    opcode_base = data[pos + 3]
    if line_range == 0 or opcode_base == 0 or not pos < program <= unit_end:
        raise DecodeError(f".debug_line: bad header (line_range 0, opcode_base 0 or header length) at {pos}")
    lengths = data[pos + 4 : pos + 4 + opcode_base - 1]
    pos += 4 + opcode_base - 1

    files: list[str]
    if version >= 5:
        dirs, pos = _entries(data, pos, program, offset_size, line_str, debug_str, budget)
        file_entries, pos = _entries(data, pos, program, offset_size, line_str, debug_str, budget)
        dir_names = [d for d, _ in dirs]
        files = [_join(dir_names[d] if d < len(dir_names) else "", name) for name, d in file_entries]
    else:
        include = [""]  # index 0: the compilation directory, which only .debug_info knows
        while data[pos]:
            budget.charge()
            name, pos = _cstring(data, pos)
            include.append(name)
        pos += 1
        files = [""]  # v2-4 file indices start at 1
        while data[pos]:
            budget.charge()
            name, pos = _cstring(data, pos)
            d, pos = read_u(data, pos)
            _, pos = read_u(data, pos)
            _, pos = read_u(data, pos)
            files.append(_join(include[d] if d < len(include) else "", name))
        pos += 1

    def file_name(index: int) -> str:
        return files[index] if 0 <= index < len(files) else f"<file {index}>"

    pos = program
    address, file_index, line = 0, 1, 1
    sequence: list[LineRow] = []
    while pos < unit_end:
        budget.charge()
        opcode = data[pos]
        pos += 1
        if opcode >= opcode_base:
            adjusted = opcode - opcode_base
            address += (adjusted // line_range) * min_inst
            line += line_base + adjusted % line_range
            sequence.append(LineRow(address, file_name(file_index), line))
        elif opcode == 0:
            length, pos = read_u(data, pos)
            sub, end = data[pos], pos + length
            if end > unit_end:
                raise DecodeError(f".debug_line: extended opcode at offset {pos} runs past its unit")
            if sub == 1:
                sequence.append(LineRow(address, file_name(file_index), line, end_sequence=True))
                out.append(sequence)
                sequence = []
                address, file_index, line = 0, 1, 1
            elif sub == 2:
                address = int.from_bytes(data[pos + 1 : end], "little")
            elif sub == 3 and version < 5:
                name, p = _cstring(data, pos + 1)
                d, _ = read_u(data, p)
                files.append(_join(include[d] if d < len(include) else "", name))
            pos = end
        elif opcode == 1:
            sequence.append(LineRow(address, file_name(file_index), line))
        elif opcode == 2:
            advance, pos = read_u(data, pos)
            address += advance * min_inst
        elif opcode == 3:
            delta, pos = read_s(data, pos)
            line += delta
        elif opcode == 4:
            file_index, pos = read_u(data, pos)
        elif opcode == 8:
            address += ((255 - opcode_base) // line_range) * min_inst
        elif opcode == 9:
            address += int.from_bytes(data[pos : pos + 2], "little")
            pos += 2
        else:  # set_column, negate_stmt, set_basic_block, prologue/epilogue, set_isa, unknown: skip operands
            for _ in range(lengths[opcode - 1]):
                _, pos = read_u(data, pos)
    return unit_end
