"""Every use of wasmtime-py's private API, fenced in one module and checked at import.

The host calls wasmtime's C API directly where wasmtime-py's public wrappers cost too much or
cannot be made thread-safe (host functions hand exceptions back through a process-wide variable:
upstream wasmtime-py issue #254). Those calls depend on private modules (``_ffi``, the component
``_types``, ``_enter``) and on the C value layouts of one wasmtime-py release. Importing this
module checks both and fails with a clear message on anything else, instead of corrupting memory.
No other module imports a private name from ``wasmtime``; ``tests/abi`` checks that.
"""

from __future__ import annotations

import ctypes
from collections.abc import Callable
from importlib.metadata import version
from typing import Any

import wasmtime
import wasmtime.component as wc

SUPPORTED_WASMTIME = ("50.",)  # release series whose private API and layouts are checked below


class UnsupportedWasmtime(ImportError):
    """The installed wasmtime-py is not one whose private API this host was written against."""


def check_version(installed: str) -> None:
    """Refuse any wasmtime-py release outside ``SUPPORTED_WASMTIME``."""
    if not installed.startswith(SUPPORTED_WASMTIME):
        raise UnsupportedWasmtime(
            f"wasmtime-py {installed} is not supported: Circuit Script calls wasmtime's C API through "
            f"wasmtime-py's private bindings, checked against {', '.join(s + 'x' for s in SUPPORTED_WASMTIME)}. "
            "Install a supported release (pip install 'wasmtime>=50,<51')."
        )


check_version(version("wasmtime"))

from wasmtime import _ffi  # noqa: E402  # only after the version check
from wasmtime.component import _types  # noqa: E402
from wasmtime.component._enter import enter_wasm  # noqa: E402

ffi: Any = _ffi  # the C bindings, for the ABI layer's direct calls
component_types: Any = _types  # wasmtime-py's component type objects (``FuncType``, ``ListType``, ...)

COMPONENT_VAL = ffi.wasmtime_component_val_t
COMPONENT_VAL_SIZE = ctypes.sizeof(COMPONENT_VAL)
COMPONENT_VAL_PAYLOAD = COMPONENT_VAL.of.offset
U8_KIND = ffi.WASMTIME_COMPONENT_U8.value
LIST_KIND = ffi.WASMTIME_COMPONENT_LIST.value
STRING_KIND = ffi.WASMTIME_COMPONENT_STRING.value
ENUM_KIND = ffi.WASMTIME_COMPONENT_ENUM.value
RESULT_KIND = ffi.WASMTIME_COMPONENT_RESULT.value
CORE_VAL = ffi.wasmtime_val_t


def check_layouts() -> None:
    """The strided ``list<u8>`` copies assume a one-byte kind at offset 0 and the payload at offset
    8 of a 32-byte component value; core host calls read ``i32`` arguments from ``wasmtime_val_t``."""
    component = (COMPONENT_VAL.kind.offset, COMPONENT_VAL.kind.size, COMPONENT_VAL_PAYLOAD, COMPONENT_VAL_SIZE)
    core_val: Any = CORE_VAL
    core = (core_val.kind.offset, core_val.of.offset, ffi.WASMTIME_I32.value)  # kind 0: zeroed values are i32
    if component != (0, 1, 8, 32) or core != (0, 8, 0):
        raise UnsupportedWasmtime(
            f"wasmtime-py {version('wasmtime')} has unexpected C value layouts "
            f"(component {component}, core {core}); the host's direct C-API calls would be unsafe"
        )
    for name in (
        "wasmtime_linker_define_func",
        "wasmtime_func_callback_t",
        "wasmtime_trap_new",
        "wasmtime_component_linker_instance_add_func",
        "wasmtime_component_func_callback_t",
        "wasmtime_component_func_call",
        "wasmtime_component_vallist_new",
        "wasmtime_component_vallist_new_uninit",
        "wasmtime_component_vallist_delete",
        "wasmtime_component_val_new",
        "wasmtime_component_val_delete",
        "str_to_capi",
        "wasmtime_instance_pre_instantiate",
        "wasmtime_instance_export_nth",
        "wasmtime_func_call",
        "wasmtime_memory_data",
        "wasmtime_memory_data_size",
    ):
        if not hasattr(ffi, name):
            raise UnsupportedWasmtime(f"wasmtime-py {version('wasmtime')} lacks {name} in its C bindings")


check_layouts()

CORE_CALLBACK = ffi.wasmtime_func_callback_t
COMPONENT_CALLBACK = ffi.wasmtime_component_func_callback_t
NO_FINALIZER = ctypes.CFUNCTYPE(None, ctypes.c_void_p)()  # NULL: the callback data is a plain index


def define_core_func(
    linker: wasmtime.Linker, module: str, name: str, ty: wasmtime.FuncType, callback: Any, index: int
) -> None:
    """Define a core host function whose C callback gets ``index`` as its data (no Python slab)."""
    module_bytes, name_bytes = module.encode("utf-8"), name.encode("utf-8")
    error = ffi.wasmtime_linker_define_func(
        linker.ptr(),
        ctypes.create_string_buffer(module_bytes),
        len(module_bytes),
        ctypes.create_string_buffer(name_bytes),
        len(name_bytes),
        ty.ptr(),
        callback,
        index,
        NO_FINALIZER,
    )
    if error:
        raise wasmtime.WasmtimeError._from_ptr(error)


def define_component_func(instance: Any, name: str, callback: Any, index: int) -> None:
    """Define ``name`` in a component linker instance with a C callback that gets ``index``."""
    encoded = name.encode("utf-8")
    error = ffi.wasmtime_component_linker_instance_add_func(
        instance.ptr(), ctypes.create_string_buffer(encoded), len(encoded), callback, index, NO_FINALIZER
    )
    if error:
        raise wasmtime.WasmtimeError._from_ptr(error)


def new_trap(message: str) -> int:
    """A fresh ``wasm_trap_t*`` for a core callback to return: the guest unwinds with it."""
    encoded = message.encode("utf-8")
    return ctypes.cast(ffi.wasmtime_trap_new(encoded, len(encoded)), ctypes.c_void_p).value or 0


def new_error(message: str) -> int:
    """A fresh ``wasmtime_error_t*`` for a component callback to return (the call fails with it)."""
    return ctypes.cast(wasmtime.WasmtimeError(message)._consume(), ctypes.c_void_p).value or 0


def caller(ptr: Any) -> wasmtime.Caller:
    """wasmtime-py's ``Caller`` over a raw caller pointer; ``release_caller`` when the call ends."""
    return wasmtime.Caller(ptr)


def release_caller(value: wasmtime.Caller) -> None:
    value._invalidate()


def call_component_func(
    store: wasmtime.Store, func: wc.Func, args: Any, nargs: int, results: Any, nresults: int
) -> None:
    """``wasmtime_component_func_call`` with wasmtime-py's error handling (a trap raises)."""
    context = store._context()
    enter_wasm(
        lambda: ffi.wasmtime_component_func_call(ctypes.byref(func._func), context, args, nargs, results, nresults)
    )


def string_to_capi(value: str) -> Any:
    return ffi.str_to_capi(value)


# -- core modules: direct calls (``abi/core_exports.py``) ---------------------------------------

CORE_INSTANCE = ffi.wasmtime_instance_t
CORE_EXTERN = ffi.wasmtime_extern_t
EXTERN_FUNC = ffi.WASMTIME_EXTERN_FUNC.value
EXTERN_MEMORY = ffi.WASMTIME_EXTERN_MEMORY.value
TRAP_POINTER = ctypes.POINTER(ffi.wasm_trap_t)
# The C functions themselves (the same objects, argument types set, as wasmtime-py's wrappers call):
# one Python frame less per call on the hot path.
func_call = ffi.dll.wasmtime_func_call
export_nth = ffi.dll.wasmtime_instance_export_nth
memory_data = ffi.dll.wasmtime_memory_data
memory_data_size = ffi.dll.wasmtime_memory_data_size
_I32_VALUES = {n: bytes((CORE_VAL * n)()) for n in range(1, 5)}  # all-zero: kind WASMTIME_I32, value 0


def i32_values(n: int) -> Any:
    """A C array of ``n`` ``wasmtime_val_t`` of kind ``i32`` (1 to 4)."""
    return (CORE_VAL * n).from_buffer_copy(_I32_VALUES[n])


def store_context(store: wasmtime.Store) -> Any:
    """The store's ``wasmtime_context_t*``, valid as long as the store is."""
    return store._context()


def raise_failure(error: Any, trap: Any) -> None:
    """wasmtime-py's error handling of a C call, without its process-wide last exception: the host's
    callbacks record their failures on the execution's context instead (``abi/lowering.py``)."""
    if error:
        raise wasmtime.WasmtimeError._from_ptr(error)
    if trap:
        raise wasmtime.Trap._from_ptr(trap)


def instantiate_pre(pre: wasmtime.InstancePre, context: Any) -> Any:
    """A raw ``wasmtime_instance_t`` of ``pre`` in the store of ``context``; a trap or error raises."""
    instance = CORE_INSTANCE()
    trap = TRAP_POINTER()
    error = ffi.wasmtime_instance_pre_instantiate(pre.ptr(), context, ctypes.byref(instance), ctypes.byref(trap))
    raise_failure(error, trap)
    return instance


def instance_from_raw(instance: Any) -> wasmtime.Instance:
    """wasmtime-py's ``Instance`` over a raw instance, for code that wants its exports mapping."""
    return wasmtime.Instance._from_raw(instance)


Converter = Callable[..., Any]
