"""Language-neutral coverage: instrument the wasm, run it, map counters to lines through DWARF `.debug_line`."""

from ._binary import Module, UnknownOpcode
from ._counters import merge_counters, read_counters
from ._dwarf import LineRow, LineTable
from ._instrument import COUNTERS_EXPORT, Block, Function, Instrumented, block_starts, instrument
from ._leb import DecodeError
from ._report import CoverageReport, FileCoverage, FunctionCoverage

__all__ = [
    "COUNTERS_EXPORT",
    "Block",
    "CoverageReport",
    "DecodeError",
    "FileCoverage",
    "Function",
    "FunctionCoverage",
    "Instrumented",
    "LineRow",
    "LineTable",
    "Module",
    "UnknownOpcode",
    "block_starts",
    "instrument",
    "merge_counters",
    "read_counters",
]
