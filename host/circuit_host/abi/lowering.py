"""The core-module binding: the host-function table linked as core-wasm imports.

Each row of the table (``host_functions.py``) becomes one import whose C callback lifts the
arguments from guest memory, calls the row's capability with the running execution's context
(``current_context()``), and lowers the result back: ``Returns.RESULT_BYTES_OR_STRING`` writes
``ok(bytes)`` (``RESULT_STRING_OR_STRING``: the ok string's UTF-8, in the same area), or
``err(message)`` when the capability raises a ``CatchableError``. Anything else
it raises is recorded on the context (``ExecutionContext.fail``) and unwinds the guest as a trap;
the sandbox classifies the call from what was recorded. The callback never lets an exception
reach wasmtime-py, whose process-wide "last exception" could hand it to another thread.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import wasmtime

from ..errors import CatchableError, GuestFault
from ..execution.context import ExecutionContext, current_context
from . import _wasmtime_private as private
from .guest_memory import GuestMemory, as_u32
from .signatures import LIST_AREA_SIZE, MEMORY_EXPORT, RESULT_AREA_SIZE, HostFunction, Lowering, Returns, RowIndex

_rows = RowIndex()  # a row's number is its C callback's data


def link_core(linker: wasmtime.Linker, functions: Sequence[HostFunction]) -> None:
    """Define every row of ``functions`` on ``linker``."""
    i32 = wasmtime.ValType.i32()
    for function in functions:
        ty = wasmtime.FuncType([i32] * len(function.core_params), [])
        private.define_core_func(linker, function.module, function.name, ty, _CALLBACK, _rows.number(function))


def _guest_of(context: ExecutionContext, caller: wasmtime.Caller) -> GuestMemory:
    """A start function may call imports before the sandbox has looked up the exports."""
    memory, realloc = caller.get(MEMORY_EXPORT), caller.get("cabi_realloc")
    if not isinstance(memory, wasmtime.Memory):
        raise GuestFault("host call made before the module's memory exists")
    return GuestMemory(caller, memory, realloc if isinstance(realloc, wasmtime.Func) else None)


def _call(function: HostFunction, context: ExecutionContext, guest: GuestMemory, raw: Sequence[int]) -> None:
    where = f"{function.interface}.{function.name}"
    args: list[Any] = []
    pos = 0
    for param in function.params:
        if param.lowering is Lowering.ENUM:
            value = as_u32(raw[pos])
            if value >= len(param.cases):
                raise GuestFault(f"{where}: enum value {value} out of range 0..{len(param.cases) - 1}")
            args.append(param.cases[value])
            pos += 1
        elif param.lowering is Lowering.STRING:
            args.append(guest.read_str(raw[pos], raw[pos + 1], f"{where} string argument"))
            pos += 2
        else:
            args.append(guest.read(raw[pos], raw[pos + 1], f"{where} list argument"))
            pos += 2
    capability = function.capability
    if function.returns is Returns.NOTHING:
        capability(context, *args)
        return
    retptr = raw[pos]
    area = RESULT_AREA_SIZE if function.returns.is_result else LIST_AREA_SIZE
    guest.check_area(retptr, area, f"{where} return area")  # before any work is done
    if function.returns is Returns.BYTES:
        guest.write_list(retptr, capability(context, *args), f"{where} return area")
        return
    try:
        returned: bytes | str = capability(context, *args)
    except CatchableError as exc:
        guest.write_result(retptr, False, str(exc).encode("utf-8"), f"{where} return area")
        return
    payload = returned.encode("utf-8") if isinstance(returned, str) else returned  # result<string, string>
    guest.write_result(retptr, True, payload, f"{where} return area")


def _host_call(index: int | None, caller_ptr: Any, args: Any, nargs: int, results: Any, nresults: int) -> int:
    """The C callback of every core host function: 0 when the call returned, else a trap."""
    function = _rows[index or 0]
    caller: wasmtime.Caller | None = None
    context: ExecutionContext | None = None
    try:
        context = current_context()
        guest = context.guest
        if guest is None:
            # The start function runs before the sandbox looked up the exports: reach memory through
            # the caller, and keep that view on the context for the call, so that an import called
            # from cabi_realloc while this call writes its reply is refused as it is later.
            caller = private.caller(caller_ptr)
            guest = context.guest = _guest_of(context, caller)
        elif guest.in_callback:
            raise GuestFault("imports may not be called from cabi_realloc or cabi_post_handle")
        _call(function, context, guest, [args[i].of.i32 for i in range(nargs)])
        return 0
    except BaseException as exc:  # recorded on the context, classified by the sandbox
        if context is not None:
            context.fail(exc)
        return private.new_trap(f"circuit host: {type(exc).__name__}: {exc}")
    finally:
        if caller is not None:
            if context is not None:
                context.guest = None  # the caller's view ends with the call
            private.release_caller(caller)


_CALLBACK = private.CORE_CALLBACK(_host_call)  # module-level: lives as long as the linkers
