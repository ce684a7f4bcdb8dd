"""Host capabilities: one module per ABI interface.

Each module has the same shape: ``link(linker)`` defines its ABI functions once per
engine (through ``abi.lowering``), and its functions take the per-execution
``ExecutionContext``, decode the guest's request, charge the governor *first*, call the
connector and encode the reply.
"""

from __future__ import annotations

import wasmtime

from . import http, limits, log, records


def link_all(linker: wasmtime.Linker) -> None:
    for capability in (records, http, log, limits):
        capability.link(linker)
