"""The Component Model binding of the ABI: how values cross between the host and a component.

The component counterpart of ``lowering.py`` (core modules): the ABI's host functions linked into
a ``wasmtime.component.Linker`` over the same capability functions, the context of the running
execution (a thread-local stack, not the store's data, so no store/context reference cycle
exists), and the fast paths that spare wasmtime-py's per-value conversions. ``components.py``
loads components and runs executions; only this module handles component values.
"""

from __future__ import annotations

import ctypes
import threading
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

import wasmtime
import wasmtime.component as wc
from wasmtime import _ffi as ffi
from wasmtime.component import _types as wc_types
from wasmtime.component._enter import catch_exceptions, enter_wasm

from ..capabilities import http as http_cap
from ..capabilities import limits as limits_cap
from ..capabilities import log as log_cap
from ..capabilities import records as records_cap
from ..errors import CatchableError, GuestFault
from ..execution.context import ExecutionContext

DML_OPS = ("insert", "update", "upsert", "delete", "undelete")
LOG_LEVELS = ("debug", "info", "warn", "error")
HANDLE_EXPORT = "handle"
INTERFACES = ("records", "http", "log", "limits")
ABI_VERSION = "1.0.0"


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

_VAL = ffi.wasmtime_component_val_t
_VAL_SIZE = ctypes.sizeof(_VAL)
_VAL_PAYLOAD = _VAL.of.offset
_U8_KIND = bytes([ffi.WASMTIME_COMPONENT_U8.value])
_LIST = ffi.WASMTIME_COMPONENT_LIST.value
_STRING = ffi.WASMTIME_COMPONENT_STRING.value
_ENUM = ffi.WASMTIME_COMPONENT_ENUM.value
_RESULT = ffi.WASMTIME_COMPONENT_RESULT.value
# The strided copies rely on wasmtime-py 50's value layout: a one-byte kind at offset 0 and the
# u8 payload at offset 8 of a 32-byte value. Any other layout disables every fast path.
_LAYOUT_KNOWN = (_VAL.kind.offset, _VAL.kind.size, _VAL_PAYLOAD, _VAL_SIZE) == (0, 1, 8, 32)
BYTES_RESULT = "result<list<u8>, string>"
HANDLE_SIGNATURE = f"func(list<u8>) -> {BYTES_RESULT}"
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
        payload.of.string = ffi.str_to_capi(value)  # TypeError for anything but str, as in wasmtime-py
    val.kind = _RESULT
    val.of.result.is_ok = isinstance(value, bytes)
    val.of.result.val = ffi.wasmtime_component_val_new(ctypes.byref(payload))  # takes the payload over


def install_bytes_fast_path() -> None:
    """Make wasmtime-py convert ``list<u8>`` with slice copies instead of one ctypes call per byte.

    Only a ``ListType`` whose element is ``u8`` with a ``bytes`` value (lowering), or a list
    value (lifting), takes the fast path; every other list goes to wasmtime-py's own converter.
    Process-wide and idempotent; a no-op if the value layout is not the one the copies assume.
    """
    if not _LAYOUT_KNOWN or getattr(wc_types.ListType.convert_to_c, "_circuit_fast_path", False):
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
    wc_types.ListType.convert_to_c = convert_to_c  # type: ignore[method-assign]
    wc_types.ListType.convert_from_c = convert_from_c  # type: ignore[method-assign]


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


# -- the execution context of the running component, per thread -----------------------------

_local = threading.local()


@contextmanager
def running(context: ExecutionContext) -> Iterator[None]:
    """Make ``context`` the one the host functions called on this thread use, until the block ends."""
    stack: list[ExecutionContext] = _local.__dict__.setdefault("stack", [])
    stack.append(context)
    try:
        yield
    finally:
        stack.pop()


def _current() -> ExecutionContext:
    stack: list[ExecutionContext] | None = getattr(_local, "stack", None)
    if not stack:
        raise GuestFault("host call outside an execution")
    return stack[-1]


def _result(call: Callable[[], bytes]) -> bytes | str:
    """``result<list<u8>, string>``: bytes for ok, str for err (wasmtime-py picks the case by type)."""
    try:
        return call()
    except CatchableError as exc:
        return str(exc)


def _query(store: Any, soql: str, binds: bytes) -> bytes | str:
    return _result(lambda: records_cap.query(_current(), soql, binds))


def _dml(store: Any, op: str, object_name: str, rows: bytes) -> bytes | str:
    return _result(lambda: records_cap.dml(_current(), DML_OPS.index(op), object_name, rows))


def _callout(store: Any, request: bytes) -> bytes | str:
    return _result(lambda: http_cap.callout(_current(), request))


def _write(store: Any, level: str, message: str) -> None:
    log_cap.write(_current(), LOG_LEVELS.index(level), message)


def _usage(store: Any) -> bytes:
    return limits_cap.usage(_current())


@dataclass(frozen=True)
class _HostFunction:
    """One ABI host function: its interface, name and exact WIT signature, and the function it runs
    (called as wasmtime-py calls host functions: ``(store, *args)``, an enum as its case name)."""

    interface: str
    name: str
    params: tuple[str, ...]
    result: str | None
    function: Callable[..., Any]

    @property
    def signature(self) -> str:
        return f"func({', '.join(self.params)})" + ("" if self.result is None else f" -> {self.result}")


_HOST_FUNCTIONS = (
    _HostFunction("records", "query", ("string", "list<u8>"), BYTES_RESULT, _query),
    _HostFunction("records", "dml", (_enum(DML_OPS), "string", "list<u8>"), BYTES_RESULT, _dml),
    _HostFunction("http", "callout", ("list<u8>",), BYTES_RESULT, _callout),
    _HostFunction("log", "write", (_enum(LOG_LEVELS), "string"), None, _write),
    _HostFunction("limits", "usage", (), "list<u8>", _usage),
)


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
    index: int | None, context: Any, _type: Any, args: Any, nargs: int, results: Any, nresults: int
) -> ctypes.c_size_t:
    """The C callback of the ABI host functions (``_HOST_FUNCTIONS[index]``), linked only for
    components whose imports have exactly the ABI's signatures. Arguments are lifted by kind and
    the result lowered by the known type; the C side frees both afterwards. Exceptions travel
    as in wasmtime-py's own callback (``catch_exceptions``): the guest cannot catch them."""
    host = _HOST_FUNCTIONS[index or 0]

    def run(store: Any) -> None:
        value = host.function(store, *[_lift(args[i]) for i in range(nargs)])
        if host.result is None:
            return
        if host.result == BYTES_RESULT:
            _lower_bytes_result(results[0], value)
        elif isinstance(value, bytes):
            _lower_bytes(results[0], value)
        else:
            raise TypeError("expected bytes value")

    return catch_exceptions(context, run)


_HOST_CALLBACK = ffi.wasmtime_component_func_callback_t(_call_host)  # module-level: lives as long as linkers
_NO_FINALIZER = ctypes.CFUNCTYPE(None, ctypes.c_void_p)()  # NULL: the data is a plain index


def _add_direct(instance: Any, name: str, index: int) -> None:
    """Define ``name`` in a linker instance as ``_HOST_FUNCTIONS[index]`` through ``_call_host``."""
    encoded = name.encode("utf-8")
    error = ffi.wasmtime_component_linker_instance_add_func(
        instance.ptr(), ctypes.create_string_buffer(encoded), len(encoded), _HOST_CALLBACK, index, _NO_FINALIZER
    )
    if error:
        raise wasmtime.WasmtimeError._from_ptr(error)


def call_handle(store: wasmtime.Store, instance: wc.Instance, index: Any, event: bytes) -> bytes | str:
    """``handle(event)`` through the C API, for a ``handle`` of exactly ``HANDLE_SIGNATURE``: bytes
    for ok, str for err, as ``Func.__call__`` returns them but without its per-call type lookups."""
    func = instance.get_func(store, index)
    if func is None:
        raise GuestFault("component exports no handle function")
    context = store._context()
    arg, result = _VAL(), _VAL()
    _lower_bytes(arg, event)
    try:
        enter_wasm(
            lambda: ffi.wasmtime_component_func_call(
                ctypes.byref(func._func), context, ctypes.byref(arg), 1, ctypes.byref(result), 1
            )
        )
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


TESTING_SIGNATURES = {
    "mock-callout": f"func(list<u8>) -> {BYTES_RESULT}",
    "mock-calls": f"func(list<u8>) -> {BYTES_RESULT}",
    "create-records": f"func(string, list<u8>) -> {BYTES_RESULT}",
    "start-test": "func()",
    "stop-test": "func()",
    "fail": "func(string)",
}
EXPORT_SIGNATURES = {
    HANDLE_EXPORT: HANDLE_SIGNATURE,
    "list-tests": "func() -> list<u8>",
    "run-test": "func(string) -> result<_, string>",
    "coverage": "func() -> list<u8>",
}


def expected_imports() -> dict[str, dict[str, str]]:
    """Every ABI interface a component may import: ``{instance name: {function: WIT signature}}``."""
    expected: dict[str, dict[str, str]] = {}
    for host in _HOST_FUNCTIONS:
        expected.setdefault(f"circuit:script/{host.interface}@{ABI_VERSION}", {})[host.name] = host.signature
    expected[f"circuit:script/testing@{ABI_VERSION}"] = dict(TESTING_SIGNATURES)
    return expected


def signature_problems(engine: wasmtime.Engine, component: wc.Component) -> list[str]:
    """What in the component's ABI imports and known exports differs from ``abi/*.wit``: an unknown
    function in an ABI interface, or a function whose type is not the ABI's."""
    kind = component.type
    expected = expected_imports()
    problems: list[str] = []
    for name, extern in kind.imports(engine).items():
        functions = expected.get(name)
        if functions is None:
            continue  # foreign imports are reported by name by the caller
        instance_type = extern.ty
        if not isinstance(instance_type, wc_types.ComponentInstanceType):
            problems.append(f"{name} is imported as {type(instance_type).__name__}, not an instance")
            continue
        for func_name, item in instance_type.exports(engine).items():
            if not isinstance(item.ty, wc_types.FuncType):
                continue  # the interface's types (enum dml-op, enum level): checked where functions use them
            want = functions.get(func_name)
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


def plan_for(engine: wasmtime.Engine, component: wc.Component) -> Plan:
    kind = component.type
    expected = {(f"circuit:script/{h.interface}@{ABI_VERSION}", h.name): h.signature for h in _HOST_FUNCTIONS}
    interfaces = {interface for interface, _ in expected}
    direct_imports = _LAYOUT_KNOWN
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
        _LAYOUT_KNOWN
        and index is not None
        and isinstance(handle_type, wc_types.FuncType)
        and signature(handle_type) == HANDLE_SIGNATURE
    )
    return Plan(index, direct_handle, direct_imports)


def _testing_functions() -> dict[str, Callable[..., Any]]:
    from ..capabilities import testing as testing_cap

    return {
        "mock-callout": lambda store, spec: _result(lambda: testing_cap.mock_callout(_current(), spec)),
        "mock-calls": lambda store, mock_id: _result(lambda: testing_cap.mock_calls(_current(), mock_id)),
        "create-records": lambda store, name, template: _result(
            lambda: testing_cap.create_records(_current(), name, template)
        ),
        "start-test": lambda store: testing_cap.start_test(_current()),
        "stop-test": lambda store: testing_cap.stop_test(_current()),
        "fail": lambda store, message: testing_cap.fail(_current(), message),
    }


def link_components(linker: wc.Linker, testing: bool = False, direct: bool = True) -> None:
    """Define the four ``circuit:script`` interfaces over the capability functions, and with
    ``testing`` the test-only ``testing`` interface (abi/circuit-test.wit).

    With ``direct`` the ABI's functions convert their values themselves (``_call_host``): such a
    linker is only for components whose imports have exactly the ABI's signatures (``plan_for``).
    Without, every function goes through wasmtime-py's generic conversions.
    """
    functions: dict[str, dict[str, Callable[..., Any]]] = {}
    for host in _HOST_FUNCTIONS:
        functions.setdefault(host.interface, {})[host.name] = host.function
    if testing:
        functions["testing"] = _testing_functions()
    direct_index = {(h.interface, h.name): i for i, h in enumerate(_HOST_FUNCTIONS)} if direct else {}
    with linker.root() as root:
        for interface, funcs in functions.items():
            with root.add_instance(f"circuit:script/{interface}@1.0.0") as instance:
                for name, func in funcs.items():
                    index = direct_index.get((interface, name))
                    if index is None:
                        instance.add_func(name, func)
                    else:
                        _add_direct(instance, name, index)
