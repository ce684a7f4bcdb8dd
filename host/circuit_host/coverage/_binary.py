"""Just enough of the wasm binary format to rewrite function bodies and keep everything else byte-for-byte.

Sections are kept as their raw payloads; only the code section is decoded, into instruction boundaries.
Offsets inside the code section are relative to the first byte of its payload (the function count), which is
the convention DWARF line tables for wasm use (LLVM, `wasm-tools addr2line --code-section-relative`).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from enum import Enum, auto

import wasmtime

from ._budget import ParseBudget
from ._leb import DecodeError, read_count, read_s, read_u, write_u

MAGIC = b"\x00asm\x01\x00\x00\x00"

CUSTOM, IMPORT, MEMORY, EXPORT, CODE = 0, 2, 5, 7, 10
# Position of each known section id in the order the spec requires (tag=13 and data count=12 included).
_SECTION_ORDER = {1: 1, 2: 2, 3: 3, 4: 4, 5: 5, 13: 6, 6: 7, 7: 8, 8: 9, 9: 10, 12: 11, 10: 12, 11: 13}


@dataclass(frozen=True)
class Section:
    """One section: its id, raw payload, and where the payload started in the original file."""

    id: int
    payload: bytes
    offset: int = -1

    @property
    def custom_name(self) -> str | None:
        if self.id != CUSTOM:
            return None
        length, pos = read_count(self.payload, 0, "custom section name")
        return self.payload[pos : pos + length].decode("utf-8", "replace")

    def encode(self) -> bytes:
        return bytes([self.id]) + write_u(len(self.payload)) + self.payload


class Imm(Enum):
    """The shape of an instruction's immediates: all the decoder needs to find where it ends."""

    NONE = auto()
    BLOCKTYPE = auto()
    IDX = auto()
    IDX2 = auto()
    BR_TABLE = auto()
    MEMARG = auto()
    MEMARG_LANE = auto()
    SLEB = auto()
    BYTES4 = auto()
    BYTES8 = auto()
    BYTES16 = auto()
    BYTE = auto()
    SELECT_T = auto()
    HEAPTYPE = auto()


def _single_byte_opcodes() -> dict[int, Imm]:
    table: dict[int, Imm] = {0x00: Imm.NONE, 0x01: Imm.NONE, 0x05: Imm.NONE, 0x0B: Imm.NONE, 0x0F: Imm.NONE}
    table.update({op: Imm.BLOCKTYPE for op in (0x02, 0x03, 0x04)})
    table.update({op: Imm.IDX for op in (0x0C, 0x0D, 0x10, 0x12, 0x3F, 0x40, 0xD2)})
    table.update({op: Imm.IDX for op in range(0x20, 0x27)})  # local.*, global.*, table.get/set
    table.update({0x0E: Imm.BR_TABLE, 0x11: Imm.IDX2, 0x13: Imm.IDX2})
    table.update({0x1A: Imm.NONE, 0x1B: Imm.NONE, 0x1C: Imm.SELECT_T})
    table.update({op: Imm.MEMARG for op in range(0x28, 0x3F)})
    table.update({0x41: Imm.SLEB, 0x42: Imm.SLEB, 0x43: Imm.BYTES4, 0x44: Imm.BYTES8})
    table.update({op: Imm.NONE for op in range(0x45, 0xC5)})  # numeric, incl. sign-extension 0xC0-0xC4
    table.update({0xD0: Imm.HEAPTYPE, 0xD1: Imm.NONE})
    return table


OPCODES = _single_byte_opcodes()
# 0xFC: saturating truncation (0-7), bulk memory (8-11) and table ops (12-17).
FC_OPCODES: dict[int, Imm] = {op: Imm.NONE for op in range(8)} | {
    8: Imm.IDX2,  # memory.init data mem
    9: Imm.IDX,  # data.drop
    10: Imm.IDX2,  # memory.copy dst src
    11: Imm.IDX,  # memory.fill mem
    12: Imm.IDX2,  # table.init elem table
    13: Imm.IDX,  # elem.drop
    14: Imm.IDX2,  # table.copy
    15: Imm.IDX,  # table.grow
    16: Imm.IDX,  # table.size
    17: Imm.IDX,  # table.fill
}


def _simd_immediate(sub: int) -> Imm | None:
    if sub <= 11 or sub in (92, 93):
        return Imm.MEMARG
    if 84 <= sub <= 91:
        return Imm.MEMARG_LANE
    if sub in (12, 13):
        return Imm.BYTES16
    if 21 <= sub <= 34:
        return Imm.BYTE
    return Imm.NONE if sub <= 0x113 else None


def _atomic_immediate(sub: int) -> Imm | None:
    if sub == 0x03:
        return Imm.BYTE  # atomic.fence
    if sub <= 0x02 or 0x10 <= sub <= 0x4E:
        return Imm.MEMARG
    return None


class Op(Enum):
    """Instructions that matter to control flow; everything else is OTHER."""

    OTHER = auto()
    BLOCK = auto()
    LOOP = auto()
    IF = auto()
    ELSE = auto()
    END = auto()
    BR = auto()
    BR_IF = auto()
    BR_TABLE = auto()
    RETURN = auto()
    UNREACHABLE = auto()


_CONTROL = {
    0x02: Op.BLOCK,
    0x03: Op.LOOP,
    0x04: Op.IF,
    0x05: Op.ELSE,
    0x0B: Op.END,
    0x0C: Op.BR,
    0x0D: Op.BR_IF,
    0x0E: Op.BR_TABLE,
    0x0F: Op.RETURN,
    0x00: Op.UNREACHABLE,
    0x12: Op.RETURN,  # return_call
    0x13: Op.RETURN,  # return_call_indirect
}


@dataclass(frozen=True)
class Instruction:
    """Where one instruction sits in the code section payload (end exclusive) and what it does to control."""

    offset: int
    end: int
    op: Op


@dataclass(frozen=True)
class FunctionBody:
    """One entry of the code section. Offsets are relative to the code section payload.

    `entry` is where the size prefix starts, `code_start` the first instruction (after the locals), `end` one
    past the final `end` opcode.
    """

    func_index: int
    entry: int
    locals_start: int
    code_start: int
    end: int
    instructions: tuple[Instruction, ...]


class UnknownOpcode(DecodeError):
    """An opcode the decoder does not know: the module cannot be instrumented safely."""


def _skip_limits(data: bytes, pos: int) -> int:
    flags = data[pos]
    pos += 1
    _, pos = read_u(data, pos)
    if flags & 0x01:
        _, pos = read_u(data, pos)
    if flags & 0x08:  # custom page size
        _, pos = read_u(data, pos)
    return pos


def _skip_name(data: bytes, pos: int) -> int:
    length, pos = read_count(data, pos, "name")
    return pos + length


def count_imports(payload: bytes) -> tuple[int, int]:
    """Number of imported (functions, memories) in an import section payload."""
    count, pos = read_count(payload, 0, "import section", item_bytes=4)
    funcs = memories = 0
    for _ in range(count):
        pos = _skip_name(payload, pos)
        pos = _skip_name(payload, pos)
        kind = payload[pos]
        pos += 1
        if kind == 0x00:
            funcs += 1
            _, pos = read_u(payload, pos)
        elif kind == 0x01:
            pos = _skip_limits(payload, _skip_valtype(payload, pos))
        elif kind == 0x02:
            memories += 1
            pos = _skip_limits(payload, pos)
        elif kind == 0x03:
            pos = _skip_valtype(payload, pos) + 1
        elif kind == 0x04:
            _, pos = read_u(payload, pos + 1)
        else:
            raise DecodeError(f"import section: unknown import kind 0x{kind:02x} at payload offset {pos - 1}")
    return funcs, memories


def _skip_valtype(data: bytes, pos: int) -> int:
    if data[pos] in (0x63, 0x64):  # (ref null? heaptype)
        _, end = read_s(data, pos + 1)
        return end
    return pos + 1


def _skip_blocktype(data: bytes, pos: int) -> int:
    byte = data[pos]
    if byte == 0x40 or byte in (0x7F, 0x7E, 0x7D, 0x7C, 0x7B, 0x70, 0x6F):
        return pos + 1
    if byte in (0x63, 0x64):
        return _skip_valtype(data, pos)
    _, end = read_s(data, pos)
    return end


def _skip_immediate(imm: Imm, data: bytes, pos: int) -> int:
    if imm is Imm.NONE:
        return pos
    if imm is Imm.BLOCKTYPE:
        return _skip_blocktype(data, pos)
    if imm is Imm.IDX:
        return read_u(data, pos)[1]
    if imm is Imm.IDX2:
        return read_u(data, read_u(data, pos)[1])[1]
    if imm is Imm.BR_TABLE:
        count, pos = read_count(data, pos, "br_table")
        for _ in range(count + 1):
            _, pos = read_u(data, pos)
        return pos
    if imm in (Imm.MEMARG, Imm.MEMARG_LANE):
        align, pos = read_u(data, pos)
        if align & 0x40:  # multi-memory: an explicit memory index follows
            _, pos = read_u(data, pos)
        _, pos = read_u(data, pos)
        return pos + 1 if imm is Imm.MEMARG_LANE else pos
    if imm is Imm.SLEB:
        return read_s(data, pos)[1]
    if imm is Imm.HEAPTYPE:
        return read_s(data, pos)[1]
    if imm is Imm.SELECT_T:
        count, pos = read_count(data, pos, "select")
        for _ in range(count):
            pos = _skip_valtype(data, pos)
        return pos
    sizes = {Imm.BYTES4: 4, Imm.BYTES8: 8, Imm.BYTES16: 16, Imm.BYTE: 1}
    return pos + sizes[imm]


def decode_instructions(
    code: bytes, start: int, end: int, func_index: int, budget: ParseBudget | None = None
) -> tuple[Instruction, ...]:
    """Split the expression code[start:end] into instructions; it must end with the function's final `end`."""
    budget = budget or ParseBudget("code section", end - start)
    if not 0 <= start <= end <= len(code):
        raise DecodeError(f"function {func_index}: body at code offset {start} runs past the code section")
    out: list[Instruction] = []
    pos = start
    depth = 0
    while pos < end:
        budget.charge()
        offset = pos
        opcode = code[pos]
        pos += 1
        imm: Imm | None
        if opcode in (0xFC, 0xFD, 0xFE):
            sub, pos = read_u(code, pos)
            if opcode == 0xFC:
                imm = FC_OPCODES.get(sub)
            else:
                imm = _simd_immediate(sub) if opcode == 0xFD else _atomic_immediate(sub)
            name = f"0x{opcode:02x} {sub}"
        else:
            imm = OPCODES.get(opcode)
            name = f"0x{opcode:02x}"
        if imm is None:
            raise UnknownOpcode(
                f"function {func_index}: unknown opcode {name} at code section offset {offset} (0x{offset:x})"
            )
        try:
            pos = _skip_immediate(imm, code, pos)
        except (IndexError, KeyError, DecodeError) as exc:
            raise DecodeError(f"function {func_index}: bad immediate of opcode {name} at code offset {offset}") from exc
        op = _CONTROL.get(opcode, Op.OTHER) if opcode < 0xFC else Op.OTHER
        if op in (Op.BLOCK, Op.LOOP, Op.IF):
            depth += 1
        elif op is Op.END:
            depth -= 1
        out.append(Instruction(offset, pos, op))
    if pos != end or depth != -1 or not out or out[-1].op is not Op.END:
        raise DecodeError(f"function {func_index}: body at code offset {start} does not end with its final `end`")
    return tuple(out)


@dataclass
class Module:
    """A parsed module: raw sections plus the facts the instrumenter needs."""

    sections: list[Section]

    @classmethod
    def from_untrusted(cls, wasm: bytes | bytearray, engine: wasmtime.Engine) -> Module:
        """Parse a module only once `engine`'s validator accepted it; an invalid one is `Rejected` (`DecodeError`)."""
        try:
            wasmtime.Module.validate(engine, wasm)
        except wasmtime.WasmtimeError as exc:
            first = str(exc).strip().splitlines()[0] if str(exc).strip() else "unknown error"
            raise DecodeError(f"invalid WebAssembly: {first}") from None
        return cls.parse(wasm)

    @classmethod
    def parse(cls, wasm: bytes | bytearray) -> Module:
        """Split into sections without validating anything else: `from_untrusted` is for bytes from outside."""
        wasm = bytes(wasm)
        if wasm[:8] != MAGIC:
            raise DecodeError("not a core wasm module (bad magic or version; components are not supported)")
        sections: list[Section] = []
        pos = 8
        while pos < len(wasm):
            section_id = wasm[pos]
            size, start = read_u(wasm, pos + 1, 32)
            if start + size > len(wasm):
                raise DecodeError(f"section {section_id} at offset {pos} runs past the end of the module")
            sections.append(Section(section_id, wasm[start : start + size], start))
            pos = start + size
        return cls(sections)

    def encode(self) -> bytes:
        return MAGIC + b"".join(section.encode() for section in self.sections)

    def section(self, section_id: int) -> Section | None:
        return next((s for s in self.sections if s.id == section_id), None)

    def custom(self, name: str) -> Section | None:
        return next((s for s in self.sections if s.custom_name == name), None)

    def custom_payload(self, name: str) -> bytes | None:
        """The contents of a custom section after its name, or None."""
        section = self.custom(name)
        if section is None:
            return None
        return section.payload[_skip_name(section.payload, 0) :]

    def imported_counts(self) -> tuple[int, int]:
        imports = self.section(IMPORT)
        try:
            return count_imports(imports.payload) if imports else (0, 0)
        except IndexError as exc:
            raise DecodeError("import section: truncated") from exc

    def memory_count(self) -> int:
        memories = self.section(MEMORY)
        defined = read_u(memories.payload, 0)[0] if memories else 0
        return self.imported_counts()[1] + defined

    def function_bodies(self) -> list[FunctionBody]:
        code = self.section(CODE)
        if code is None:
            return []
        data = code.payload
        first = self.imported_counts()[0]
        budget = ParseBudget("code section", len(data))
        try:
            count, pos = read_count(data, 0, "code section", item_bytes=2)
            bodies: list[FunctionBody] = []
            for i in range(count):
                entry = pos
                size, body_start = read_u(data, pos, 32)
                body_end = body_start + size
                if body_end > len(data):
                    raise DecodeError(f"code section: body {i} at offset {entry} runs past the section")
                groups, p = read_count(data, body_start, "locals", end=body_end, item_bytes=2)
                for _ in range(groups):
                    _, p = read_u(data, p, 32)
                    p = _skip_valtype(data, p)
                instructions = decode_instructions(data, p, body_end, first + i, budget)
                bodies.append(FunctionBody(first + i, entry, body_start, p, body_end, instructions))
                pos = body_end
        except IndexError as exc:
            raise DecodeError("code section: truncated") from exc
        return bodies

    def function_names(self) -> dict[int, str]:
        """Function names from the `name` custom section (subsection 1), if any; a damaged section yields {}."""
        data = self.custom_payload("name")
        names: dict[int, str] = {}
        if data is None:
            return names
        try:
            pos = 0
            while pos < len(data):
                kind = data[pos]
                size, pos = read_u(data, pos + 1)
                if kind == 1:
                    count, p = read_count(data, pos, "name section", item_bytes=2)
                    for _ in range(count):
                        index, p = read_u(data, p)
                        length, p = read_u(data, p)
                        names[index] = data[p : p + length].decode("utf-8", "replace")
                        p += length
                pos += size
        except (IndexError, DecodeError):
            return names
        return names

    def replace(self, section: Section) -> None:
        """Put `section` in place of the first one with its id, or insert it where the spec orders it."""
        for i, existing in enumerate(self.sections):
            if existing.id == section.id and section.id != CUSTOM:
                self.sections[i] = section
                return
        rank = _SECTION_ORDER[section.id]
        for i, existing in enumerate(self.sections):
            if existing.id != CUSTOM and _SECTION_ORDER.get(existing.id, 0) > rank:
                self.sections.insert(i, section)
                return
        self.sections.append(section)


def vec(items: Iterable[bytes]) -> bytes:
    """A wasm vector: LEB128 count followed by the items."""
    listed = list(items)
    return write_u(len(listed)) + b"".join(listed)
