"""Turn host functions that speak Python values into core-wasm imports.

A capability implements ``impl(context, *args)`` where strings arrive as ``str``,
``list<u8>`` as ``bytes`` and enums as validated ``int``. This module lifts those
arguments from guest memory and lowers the return value back into it:
``Returns.RESULT_BYTES_OR_STRING`` writes ``ok(bytes)`` or, when the impl raises a
``CatchableError``, ``err(message)``. Anything else the impl raises unwinds the guest.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, Protocol

import wasmtime
from wasmtime import _ffi, _value  # store data lookup has no public API in wasmtime-py 50

from ..errors import CatchableError, GuestFault
from .guest_memory import GuestMemory, as_u32
from .signatures import LIST_AREA_SIZE, RESULT_AREA_SIZE, ImportSpec, Param, Returns


class HostContext(Protocol):
    """What lowering needs from the per-execution context kept as the store's data."""

    guest: GuestMemory | None


def context_of(caller: wasmtime.Caller) -> Any:
    """The per-execution context the runtime attached to the store (``Store(engine, data=...)``)."""
    data = _ffi.wasmtime_context_get_data(caller._context())
    if not data:
        raise RuntimeError("store has no execution context")
    return _value._unintern(data)  # type: ignore[arg-type]  # the slab index, as wasmtime-py does


def _guest_of(context: HostContext, caller: wasmtime.Caller) -> GuestMemory:
    if context.guest is not None:
        # The store handle is usable inside a host call: a Caller shares the store's context.
        if context.guest.in_callback:
            raise GuestFault("imports may not be called from cabi_realloc or cabi_post_handle")
        return context.guest
    # A start function may call imports before the runtime has looked up the exports.
    memory, realloc = caller.get("memory"), caller.get("cabi_realloc")
    if not isinstance(memory, wasmtime.Memory):
        raise GuestFault("host call made before the module's memory exists")
    return GuestMemory(caller, memory, realloc if isinstance(realloc, wasmtime.Func) else None)


def define_import(linker: wasmtime.Linker, spec: ImportSpec, impl: Callable[..., Any]) -> None:
    """Define ``spec`` on ``linker``, dispatching to ``impl(context, *lifted_args)``."""
    i32 = wasmtime.ValType.i32()
    ty = wasmtime.FuncType([i32] * len(spec.core_params), [])
    where = f"{spec.interface}.{spec.name}"

    def host_function(caller: wasmtime.Caller, *raw: int) -> None:
        context = context_of(caller)
        guest = _guest_of(context, caller)
        args: list[Any] = []
        pos = 0
        for param in spec.params:
            if param is Param.ENUM:
                value = as_u32(raw[pos])
                if value >= spec.enum_cases:
                    raise GuestFault(f"{where}: enum value {value} out of range 0..{spec.enum_cases - 1}")
                args.append(value)
                pos += 1
            elif param is Param.STRING:
                args.append(guest.read_str(raw[pos], raw[pos + 1], f"{where} string argument"))
                pos += 2
            else:
                args.append(guest.read(raw[pos], raw[pos + 1], f"{where} list argument"))
                pos += 2
        if spec.returns is Returns.NOTHING:
            impl(context, *args)
            return
        retptr = raw[pos]
        area = RESULT_AREA_SIZE if spec.returns is Returns.RESULT_BYTES_OR_STRING else LIST_AREA_SIZE
        guest.check_area(retptr, area, f"{where} return area")  # before any work is done
        if spec.returns is Returns.BYTES:
            guest.write_list(retptr, impl(context, *args), f"{where} return area")
            return
        try:
            payload: bytes = impl(context, *args)
        except CatchableError as exc:
            guest.write_result(retptr, False, str(exc).encode("utf-8"), f"{where} return area")
            return
        guest.write_result(retptr, True, payload, f"{where} return area")

    linker.define_func(spec.module, spec.name, ty, host_function, access_caller=True)
