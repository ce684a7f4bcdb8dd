"""Insert a coverage probe at the start of every basic block, writing to one extra memory of its own.

The guest's memories, functions, globals and every index stay as they were: the counters live in a memory
appended after the existing ones (multi-memory) and exported as `circuit_coverage`. A probe is
`i32.const <block>; i32.const 1; i32.store8 mem=<counters>`: it needs no locals and leaves the stack as it was.
"""

from __future__ import annotations

from dataclasses import dataclass

import wasmtime

from ._binary import CODE, EXPORT, MEMORY, FunctionBody, Module, Op, Section, vec
from ._leb import DecodeError, read_count, read_u, write_s, write_u

COUNTERS_EXPORT = "circuit_coverage"
PAGE = 65536

# A straight-line run ends after these; the next instruction starts a new block. `block` is not among them:
# entering a block falls through into its body, so the body's first instruction is in the same run.
_ENDS_RUN = frozenset({Op.LOOP, Op.IF, Op.ELSE, Op.END, Op.BR, Op.BR_IF, Op.BR_TABLE, Op.RETURN, Op.UNREACHABLE})


@dataclass(frozen=True)
class Block:
    """One basic block: its counter index and the original code offsets it covers (end exclusive)."""

    index: int
    func_index: int
    code_offset: int
    end_offset: int


@dataclass(frozen=True)
class Function:
    """A defined function of the original module; `body_start` is where its locals are declared (DWARF's low_pc)."""

    index: int
    name: str
    body_start: int
    code_start: int
    end: int


@dataclass(frozen=True)
class Instrumented:
    """The instrumented module, its blocks (counter i belongs to blocks[i]) and the original functions."""

    wasm: bytes
    blocks: list[Block]
    functions: list[Function]
    memory_index: int

    @property
    def counter_count(self) -> int:
        return len(self.blocks)


def block_starts(body: FunctionBody) -> list[int]:
    """Indices (into body.instructions) of the instructions that start a basic block."""
    starts = [0]
    for i, instruction in enumerate(body.instructions[:-1]):
        if instruction.op in _ENDS_RUN:
            starts.append(i + 1)
    return starts


def _probe(counter: int, memory_index: int) -> bytes:
    memarg = (b"\x40" + write_u(memory_index) if memory_index else b"\x00") + b"\x00"
    return b"\x41" + write_s(counter) + b"\x41\x01\x3a" + memarg


def instrument(wasm: bytes | bytearray, engine: wasmtime.Engine, keep_debug_sections: bool = False) -> Instrumented:
    """Return `wasm` with a probe per basic block and the block table that maps counters back to code offsets.

    The `.debug_*` custom sections are dropped unless asked for: their addresses describe the original code, so
    kept as they are they would make wasmtime's trap backtraces name wrong lines. Read DWARF from the original.
    `engine` validates `wasm` before any of it is parsed here.
    """
    module = Module.from_untrusted(wasm, engine)
    if not keep_debug_sections:
        module.sections = [s for s in module.sections if not (s.custom_name or "").startswith(".debug_")]
    exports = module.section(EXPORT)
    if exports is not None and _exports_counters(exports.payload):
        raise DecodeError(f"module already exports {COUNTERS_EXPORT!r}: was it instrumented twice?")
    code = module.section(CODE)
    bodies = module.function_bodies()
    names = module.function_names()
    memory_index = module.memory_count()

    blocks: list[Block] = []
    new_bodies: list[bytes] = []
    for body in bodies:
        data = code.payload if code else b""
        parts = [data[body.locals_start : body.code_start]]
        starts = set(block_starts(body))
        ordered = sorted(starts)
        for n, first in enumerate(ordered):
            offset = body.instructions[first].offset
            end = body.instructions[ordered[n + 1]].offset if n + 1 < len(ordered) else body.end
            blocks.append(Block(len(blocks), body.func_index, offset, end))
        counter = len(blocks) - len(ordered)
        for i, instruction in enumerate(body.instructions):
            if i in starts:
                parts.append(_probe(counter, memory_index))
                counter += 1
            parts.append(data[instruction.offset : instruction.end])
        new_body = b"".join(parts)
        new_bodies.append(write_u(len(new_body)) + new_body)
    if code is not None:
        module.replace(Section(CODE, vec(new_bodies)))

    pages = max(1, -(-len(blocks) // PAGE))
    memory_type = b"\x01" + write_u(pages) + write_u(pages)
    memories = module.section(MEMORY)
    if memories is None:
        module.replace(Section(MEMORY, vec([memory_type])))
    else:
        count, pos = read_u(memories.payload, 0)
        module.replace(Section(MEMORY, write_u(count + 1) + memories.payload[pos:] + memory_type))
    export = write_u(len(COUNTERS_EXPORT)) + COUNTERS_EXPORT.encode() + b"\x02" + write_u(memory_index)
    if exports is None:
        module.replace(Section(EXPORT, vec([export])))
    else:
        count, pos = read_u(exports.payload, 0)
        module.replace(Section(EXPORT, write_u(count + 1) + exports.payload[pos:] + export))

    functions = [
        Function(
            body.func_index,
            names.get(body.func_index, f"function[{body.func_index}]"),
            body.locals_start,
            body.code_start,
            body.end,
        )
        for body in bodies
    ]
    return Instrumented(module.encode(), blocks, functions, memory_index)


def _exports_counters(payload: bytes) -> bool:
    count, pos = read_count(payload, 0, "export section", item_bytes=3)
    for _ in range(count):
        length, pos = read_count(payload, pos, "export name")
        name = payload[pos : pos + length].decode("utf-8", "replace")
        pos += length + 1
        _, pos = read_u(payload, pos)
        if name == COUNTERS_EXPORT:
            return True
    return False
