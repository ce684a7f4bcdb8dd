"""The Component Model binding of the ABI: how values cross between the host and a component.

The component counterpart of ``lowering.py`` (core modules): the rows of the host-function table
(``host_functions.py``) linked into a ``wasmtime.component.Linker``, each calling its capability
with the running execution's context (``current_context()``), and the fast paths that spare
wasmtime-py's per-value conversions. ``sandbox/components.py`` loads components and runs
executions; only this module handles component values.
"""

from __future__ import annotations

import ctypes
import threading
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from typing import Any

import wasmtime
import wasmtime.component as wc

from ..errors import CatchableError, GuestFault
from ..execution.context import ExecutionContext, current_context
from . import _wasmtime_private as private
from ._wasmtime_private import component_types as wc_types
from .signatures import (
    COVERAGE_EXPORT,
    HANDLE_EXPORT,
    TEST_EXPORT_FUNCS,
    HostFunction,
    Returns,
    RowIndex,
)

# -- fast paths through wasmtime-py's component binding -------------------------------------
#
# wasmtime-py converts every component value in Python, through type objects it rebuilds from
# the C API on every call: a list<u8> costs one ctypes call per byte (~2 us each), and each call
# of ``handle`` or of a host function re-reads the function's type first (~0.1-0.3 ms per call
# for the ABI's signatures). The ABI has few, fixed signatures, so the host converts them itself:
#
# - ``install_bytes_fast_path`` patches wasmtime-py's ``list<u8>`` conversion (strided copies
#   over the C array of values), for whatever still goes through wasmtime-py;
# - the five ABI host functions are defined with one C callback (``_call_host``) that converts
#   their fixed signatures directly, and ``handle`` is called through the C API (``call_handle``).
#   Both are used only for a component whose imports and ``handle`` have exactly the ABI's
#   signatures, checked once per component (``plan_for``); any other component gets wasmtime-py's
#   generic conversions, unchanged (a second linker, ``Func.__call__``).
#
# Strings need no patch: wasmtime-py already copies a ``string`` in one piece (~3-5 us).

ffi = private.ffi
_VAL = private.COMPONENT_VAL
_VAL_SIZE = private.COMPONENT_VAL_SIZE
_VAL_PAYLOAD = private.COMPONENT_VAL_PAYLOAD  # the layouts are checked when ``_wasmtime_private`` is imported
_U8_KIND = bytes([private.U8_KIND])
_LIST = private.LIST_KIND
_STRING = private.STRING_KIND
_ENUM = private.ENUM_KIND
_RESULT = private.RESULT_KIND
BYTES_RESULT = Returns.RESULT_BYTES_OR_STRING.value
EXPORT_SIGNATURES = {
    spec.name: spec.wit_signature for spec in (*TEST_EXPORT_FUNCS, COVERAGE_EXPORT) if spec.wit_signature is not None
}
HANDLE_SIGNATURE = EXPORT_SIGNATURES[HANDLE_EXPORT]
_UNPATCHED: dict[str, Callable[..., Any]] = {}


_SCRATCH_MAX = 1 << 17  # values (4 MiB): a longer list<u8> is lowered through it in chunks
_LIFT_CHUNK = 1 << 14  # values read per copy when lifting
_scratch_lock = threading.Lock()  # ctypes releases the GIL during the copy out of the scratch
_scratch: tuple[bytearray, Any] | None = None  # (buffer, the same memory as a ctypes array of values)


def _scratch_for(n: int) -> tuple[bytearray, Any]:
    """The reusable array of u8 values (kinds pre-filled), grown to hold ``n`` up to the cap.

    Reuse matters: a fresh 32-bytes-per-byte buffer costs more in page faults than in copying
    (a 100 KB payload: ~4 ms fresh against ~0.4 ms reused). It grows by powers of two, so it is
    rebuilt only a few times. Call with ``_scratch_lock`` held.
    """
    global _scratch
    if _scratch is None or len(_scratch[1]) < min(n, _SCRATCH_MAX):
        size = min(_SCRATCH_MAX, max(4096, 1 << (n - 1).bit_length()))
        buf = bytearray(size * _VAL_SIZE)
        buf[0::_VAL_SIZE] = _U8_KIND * size
        _scratch = (buf, (_VAL * size).from_buffer(buf))
    return _scratch


def _lower_bytes(val: Any, data: bytes) -> None:
    """Make ``val`` (a ``wasmtime_component_val_t``) the ``list<u8>`` ``data``: one strided copy
    into the scratch array of values, then one copy of it into the C list."""
    n = len(data)
    raw = ffi.wasmtime_component_vallist_t()
    with _scratch_lock:
        buf, values = _scratch_for(n)
        step = len(values)
        if n <= step:
            if n:
                buf[_VAL_PAYLOAD : n * _VAL_SIZE : _VAL_SIZE] = data
            ffi.wasmtime_component_vallist_new(raw, n, values)  # moves n plain u8 values: the scratch stays valid
        else:
            ffi.wasmtime_component_vallist_new_uninit(raw, n)
            base = ctypes.addressof(raw.data.contents)
            for start in range(0, n, step):
                chunk = data[start : start + step]
                buf[_VAL_PAYLOAD : len(chunk) * _VAL_SIZE : _VAL_SIZE] = chunk
                ctypes.memmove(base + start * _VAL_SIZE, values, len(chunk) * _VAL_SIZE)
    val.kind = _LIST
    val.of.list = raw


def _lift_bytes(raw: Any) -> bytes:
    """The bytes of a ``list<u8>`` array of values: strided slices of chunked copies."""
    n = raw.size
    if n <= _LIFT_CHUNK:
        return ctypes.string_at(raw.data, n * _VAL_SIZE)[_VAL_PAYLOAD::_VAL_SIZE] if n else b""
    base = ctypes.addressof(raw.data.contents)
    return b"".join(
        ctypes.string_at(base + start * _VAL_SIZE, min(_LIFT_CHUNK, n - start) * _VAL_SIZE)[_VAL_PAYLOAD::_VAL_SIZE]
        for start in range(0, n, _LIFT_CHUNK)
    )


def _lift_string(name: Any) -> str:
    """A ``string`` (or enum case name) as str; the C side still owns and frees it."""
    return ctypes.string_at(name.data, name.size).decode("utf-8") if name.size else ""


def _lower_bytes_result(val: Any, value: bytes | str) -> None:
    """Make ``val`` a ``result<list<u8>, string>``: bytes are ok, str is err (wasmtime-py's convention)."""
    payload = _VAL()
    if isinstance(value, bytes):
        _lower_bytes(payload, value)
    else:
        payload.kind = _STRING
        payload.of.string = private.string_to_capi(value)  # TypeError for anything but str, as in wasmtime-py
    val.kind = _RESULT
    val.of.result.is_ok = isinstance(value, bytes)
    val.of.result.val = ffi.wasmtime_component_val_new(ctypes.byref(payload))  # takes the payload over


def _lower_string_result(val: Any, value: Any) -> None:
    """Make ``val`` a ``result<string, string>`` from the ``Variant`` ``_run`` returned."""
    payload = _VAL()
    payload.kind = _STRING
    payload.of.string = private.string_to_capi(value.payload)
    val.kind = _RESULT
    val.of.result.is_ok = value.tag == "ok"
    val.of.result.val = ffi.wasmtime_component_val_new(ctypes.byref(payload))  # takes the payload over


def install_bytes_fast_path() -> None:
    """Make wasmtime-py convert ``list<u8>`` with slice copies instead of one ctypes call per byte.

    Only a ``ListType`` whose element is ``u8`` with a ``bytes`` value (lowering), or a list
    value (lifting), takes the fast path; every other list goes to wasmtime-py's own converter.
    Process-wide and idempotent.
    """
    if getattr(wc_types.ListType.convert_to_c, "_circuit_fast_path", False):
        return
    original_to_c = _UNPATCHED["ListType.convert_to_c"] = wc_types.ListType.convert_to_c
    original_from_c = _UNPATCHED["ListType.convert_from_c"] = wc_types.ListType.convert_from_c

    def convert_to_c(self: Any, store: Any, val: Any, ptr: Any) -> None:
        if not (isinstance(val, bytes) and self._is_bytes()):
            original_to_c(self, store, val, ptr)
            return
        _lower_bytes(ptr.contents, val)

    def convert_from_c(self: Any, c: Any) -> Any:
        if c.kind != _LIST or not self._is_bytes():
            return original_from_c(self, c)
        try:
            return _lift_bytes(c.of.list)
        finally:
            ffi.wasmtime_component_vallist_delete(ctypes.byref(c.of.list))  # as wasmtime-py: frees now

    for patched in (convert_to_c, convert_from_c):
        setattr(patched, "_circuit_fast_path", True)  # noqa: B010  # marks the patch: idempotent across reloads
    wc_types.ListType.convert_to_c = convert_to_c
    wc_types.ListType.convert_from_c = convert_from_c


def unpatched_converter(name: str) -> Callable[..., Any]:
    """wasmtime-py's own converter, e.g. ``"ListType.convert_to_c"``, whether or not the fast
    path is installed: what the benchmarks compare the fast path against."""
    install_bytes_fast_path()
    cls_name, _, method = name.partition(".")
    return _UNPATCHED.get(name) or getattr(getattr(wc_types, cls_name), method)


def _wit(ty: Any) -> str:
    """A component value type in WIT syntax, for the types the ABI uses; others by class name."""
    if isinstance(ty, wc_types.String):
        return "string"
    if isinstance(ty, wc_types.U8):
        return "u8"
    if isinstance(ty, wc_types.ListType):
        return f"list<{_wit(ty.element)}>"
    if isinstance(ty, wc_types.ResultType):
        ok, err = ty.ok, ty.err
        return f"result<{'_' if ok is None else _wit(ok)}, {'_' if err is None else _wit(err)}>"
    if isinstance(ty, wc_types.EnumType):
        return _enum(ty.names)
    return type(ty).__name__


def _enum(names: Iterable[str]) -> str:
    return f"enum {{{', '.join(names)}}}"


def signature(ty: wc_types.FuncType) -> str:
    """A component function type as ``func(string, list<u8>) -> result<list<u8>, string>``."""
    result = ty.result
    return f"func({', '.join(_wit(param) for _, param in ty.params)})" + (
        "" if result is None else f" -> {_wit(result)}"
    )


# -- the host functions: the table's rows, called with the running execution's context ---------

_rows = RowIndex()  # a row's number is its C callback's data


def _run(function: HostFunction, context: ExecutionContext, args: Sequence[Any]) -> Any:
    """Call the row's capability; an ``err`` result is the ``CatchableError``'s message as str
    (``result<string, string>``, whose ok is a str too: a tagged ``Variant``, as wasmtime-py lowers it)."""
    if not function.returns.is_result:
        return function.capability(context, *args)
    tagged = function.returns is Returns.RESULT_STRING_OR_STRING
    try:
        value = function.capability(context, *args)
    except CatchableError as exc:
        return wc.Variant("err", str(exc)) if tagged else str(exc)
    return wc.Variant("ok", value) if tagged else value


def _generic(function: HostFunction) -> Callable[..., Any]:
    """The row as wasmtime-py calls host functions (``(store, *args)``, an enum as its case name).

    An uncatchable error is recorded on the context and re-raised as a ``WasmtimeError``, which
    wasmtime-py passes on without its process-wide "last exception" variable.
    """

    def call(store: Any, *args: Any) -> Any:
        context = current_context()
        try:
            return _run(function, context, args)
        except BaseException as exc:  # recorded; the sandbox classifies from it
            context.fail(exc)
            raise wasmtime.WasmtimeError(f"circuit host: {type(exc).__name__}: {exc}") from None

    return call


def _lift(val: Any) -> bytes | str:
    """An argument of an ABI host function: a ``list<u8>``, a ``string`` or an enum case name."""
    kind = val.kind
    if kind == _LIST:
        return _lift_bytes(val.of.list)
    if kind == _STRING:
        return _lift_string(val.of.string)
    if kind == _ENUM:
        return _lift_string(val.of.enumeration)
    raise TypeError(f"unexpected component value kind {kind}")


def _call_host(
    index: int | None, store_context: Any, _type: Any, args: Any, nargs: int, results: Any, nresults: int
) -> int:
    """The C callback of the ABI host functions, linked only for components whose imports have
    exactly the ABI's signatures. Arguments are lifted by kind and the result lowered by the row's
    type; the C side frees both afterwards. An uncatchable error is recorded on the context and
    fails the call with a wasmtime error: the guest cannot catch it."""
    function = _rows[index or 0]
    context: ExecutionContext | None = None
    try:
        context = current_context()
        value = _run(function, context, [_lift(args[i]) for i in range(nargs)])
        if function.returns is Returns.RESULT_BYTES_OR_STRING:
            _lower_bytes_result(results[0], value)
        elif function.returns is Returns.RESULT_STRING_OR_STRING:
            _lower_string_result(results[0], value)
        elif function.returns is Returns.BYTES:
            if not isinstance(value, bytes):
                raise TypeError("expected bytes value")
            _lower_bytes(results[0], value)
        return 0
    except BaseException as exc:  # recorded on the context, classified by the sandbox
        if context is not None:
            context.fail(exc)
        return private.new_error(f"circuit host: {type(exc).__name__}: {exc}")


_HOST_CALLBACK = private.COMPONENT_CALLBACK(_call_host)  # module-level: lives as long as linkers


def call_handle(store: wasmtime.Store, instance: wc.Instance, index: Any, event: bytes) -> bytes | str:
    """``handle(event)`` through the C API, for a ``handle`` of exactly ``HANDLE_SIGNATURE``: bytes
    for ok, str for err, as ``Func.__call__`` returns them but without its per-call type lookups."""
    func = instance.get_func(store, index)
    if func is None:
        raise GuestFault("component exports no handle function")
    arg, result = _VAL(), _VAL()
    _lower_bytes(arg, event)
    try:
        private.call_component_func(store, func, ctypes.byref(arg), 1, ctypes.byref(result), 1)
        if result.kind != _RESULT or not result.of.result.val:
            raise GuestFault("handle returned an unexpected value")
        payload = result.of.result.val.contents
        return _lift_bytes(payload.of.list) if result.of.result.is_ok else _lift_string(payload.of.string)
    finally:
        ffi.wasmtime_component_val_delete(ctypes.byref(arg))
        ffi.wasmtime_component_val_delete(ctypes.byref(result))


@dataclass(frozen=True)
class Plan:
    """How one component runs, decided once from its types: the fast paths only for the ABI's
    exact signatures, wasmtime-py's generic conversions otherwise."""

    handle: Any  # the component's export index of ``handle``: valid in every instance, looked up once
    direct_handle: bool
    direct_imports: bool


def expected_imports(functions: Iterable[HostFunction]) -> dict[str, dict[str, str]]:
    """``{instance name: {function: WIT signature}}`` of the given rows."""
    expected: dict[str, dict[str, str]] = {}
    for function in functions:
        expected.setdefault(function.module, {})[function.name] = function.wit_signature
    return expected


def signature_problems(
    engine: wasmtime.Engine, component: wc.Component, functions: Iterable[HostFunction]
) -> list[str]:
    """What in the component's ABI imports and known exports differs from the table: an unknown
    function in an ABI interface, or a function whose type is not the ABI's."""
    kind = component.type
    expected = expected_imports(functions)
    problems: list[str] = []
    for name, extern in kind.imports(engine).items():
        signatures = expected.get(name)
        if signatures is None:
            continue  # foreign imports are reported by name by the caller
        instance_type = extern.ty
        if not isinstance(instance_type, wc_types.ComponentInstanceType):
            problems.append(f"{name} is imported as {type(instance_type).__name__}, not an instance")
            continue
        for func_name, item in instance_type.exports(engine).items():
            if not isinstance(item.ty, wc_types.FuncType):
                continue  # the interface's types (enum dml-op, enum level): checked where functions use them
            want = signatures.get(func_name)
            got = signature(item.ty)
            if want is None:
                problems.append(f"{name} has no function {func_name!r}")
            elif got != want:
                problems.append(f"{name}#{func_name} is {got}, the ABI's is {want}")
    for name, extern in kind.exports(engine).items():
        want = EXPORT_SIGNATURES.get(name)
        if want is None:
            continue  # other exports are never called
        got = signature(extern.ty) if isinstance(extern.ty, wc_types.FuncType) else type(extern.ty).__name__
        if got != want:
            problems.append(f"export {name!r} is {got}, the ABI's is {want}")
    return problems


def plan_for(engine: wasmtime.Engine, component: wc.Component, functions: Sequence[HostFunction]) -> Plan:
    """The fast paths apply to the production rows' imports and ``handle`` when their types are exact."""
    kind = component.type
    expected = {f.key: f.wit_signature for f in functions if not f.test_only}
    interfaces = {interface for interface, _ in expected}
    direct_imports = True
    for name, extern in kind.imports(engine).items():
        if name not in interfaces:
            continue  # the testing interface is always linked through wasmtime-py
        instance_type = extern.ty
        if not isinstance(instance_type, wc_types.ComponentInstanceType):
            direct_imports = False
            continue
        for func_name, item in instance_type.exports(engine).items():
            ty = item.ty
            if isinstance(ty, wc_types.FuncType) and expected.get((name, func_name)) != signature(ty):
                direct_imports = False
    handle = kind.exports(engine).get(HANDLE_EXPORT)
    handle_type = None if handle is None else handle.ty
    index = component.get_export_index(HANDLE_EXPORT)
    direct_handle = (
        index is not None and isinstance(handle_type, wc_types.FuncType) and signature(handle_type) == HANDLE_SIGNATURE
    )
    return Plan(index, direct_handle, direct_imports)


def link_components(linker: wc.Linker, functions: Sequence[HostFunction], direct: bool = True) -> None:
    """Define every row's interface and function on ``linker``.

    With ``direct`` the production rows convert their values themselves (``_call_host``): such a
    linker is only for components whose imports have exactly the ABI's signatures (``plan_for``).
    Test-only rows, and every row without ``direct``, go through wasmtime-py's generic conversions.
    """
    by_interface: dict[str, list[HostFunction]] = {}
    for function in functions:
        by_interface.setdefault(function.module, []).append(function)
    with linker.root() as root:
        for module, rows in by_interface.items():
            with root.add_instance(module) as instance:
                for function in rows:
                    if direct and not function.test_only:
                        private.define_component_func(instance, function.name, _HOST_CALLBACK, _rows.number(function))
                    else:
                        instance.add_func(function.name, _generic(function))
