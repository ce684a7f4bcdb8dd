"""Load-time validation of a core module against ABI v1.

A module that imports anything outside the ABI (WASI included), lacks a required
export, declares more memory than the cap, or is not valid wasm is rejected before it
is ever instantiated. Unknown *exports* are fine: other toolchains add their own, and
the host never calls them.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import wasmtime

from ..errors import Rejected
from .signatures import (
    EXPORT_FUNCS,
    MEMORY_EXPORT,
    TEST_EXPORT_FUNCS,
    ExportSpec,
    HostFunction,
    by_key,
    interface_name,
)

WASM_PAGE = 65536


def _types(values: Any) -> tuple[str, ...]:
    return tuple(str(v) for v in values)


def _describe(params: tuple[str, ...], results: tuple[str, ...]) -> str:
    return f"({' '.join(params)}) -> ({' '.join(results)})"


def check_imports(module: wasmtime.Module, allowed: Mapping[tuple[str, str], HostFunction]) -> None:
    for imp in module.imports:
        where = f"import {imp.module!r} {imp.name!r}"
        spec = allowed.get((imp.module, imp.name or ""))
        if spec is None:
            hint = " (WASI is not available to circuits)" if imp.module.startswith("wasi") else ""
            if imp.module == interface_name("testing"):
                hint = " (testing is linked only into test modules, run by `circuit test`)"
            raise Rejected(f"{where} is not part of the circuit ABI v1{hint}")
        ty = imp.type
        if not isinstance(ty, wasmtime.FuncType):
            raise Rejected(f"{where} must be a function")
        got = (_types(ty.params), _types(ty.results))
        if got != (spec.core_params, ()):
            raise Rejected(f"{where} has signature {_describe(*got)}, expected {_describe(spec.core_params, ())}")


def check_exports(module: wasmtime.Module, memory_cap: int, required: tuple[ExportSpec, ...] = EXPORT_FUNCS) -> None:
    exports = {exp.name: exp.type for exp in module.exports}
    memory = exports.get(MEMORY_EXPORT)
    if not isinstance(memory, wasmtime.MemoryType):
        raise Rejected(f"module must export a memory named {MEMORY_EXPORT!r}")
    if memory.is_64 or memory.is_shared:
        raise Rejected("exported memory must be a non-shared 32-bit memory")
    initial = memory.limits.min * WASM_PAGE
    if initial > memory_cap:
        raise Rejected(f"module declares {initial} bytes of initial memory, over the cap of {memory_cap}")
    for spec in required:
        ty = exports.get(spec.name)
        if ty is None:
            if spec.required:
                raise Rejected(f"module must export function {spec.name!r}")
            continue
        if not isinstance(ty, wasmtime.FuncType):
            raise Rejected(f"export {spec.name!r} must be a function")
        got = (_types(ty.params), _types(ty.results))
        if got != (spec.params, spec.results):
            raise Rejected(
                f"export {spec.name!r} has signature {_describe(*got)}, expected {_describe(spec.params, spec.results)}"
            )


def compile_checked(engine: wasmtime.Engine, wasm: bytes, max_bytes: int) -> wasmtime.Module:
    """Compile ``wasm`` after the cheap checks; raise ``Rejected`` naming the reason."""
    if len(wasm) > max_bytes:
        raise Rejected(f"module is {len(wasm)} bytes, over the size cap of {max_bytes}")
    if wasm[:4] != b"\0asm":
        raise Rejected("not a WebAssembly binary (missing \\0asm magic)")
    if wasm[4:8] != b"\x01\x00\x00\x00":
        raise Rejected("not a core WebAssembly module but a component (Runtime.load runs components)")
    try:
        return wasmtime.Module(engine, wasm)
    except wasmtime.WasmtimeError as exc:
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else "unknown error"
        raise Rejected(f"invalid WebAssembly: {first}") from None


def validate(module: wasmtime.Module, memory_cap: int, functions: Sequence[HostFunction]) -> None:
    """Check ``module`` against the runtime's host functions; a runtime with the test world's rows
    also requires the test exports (world ``circuit-test``)."""
    check_imports(module, by_key(functions))
    testing = any(function.test_only for function in functions)
    check_exports(module, memory_cap, TEST_EXPORT_FUNCS if testing else EXPORT_FUNCS)
