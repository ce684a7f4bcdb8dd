"""Python guests: run WebAssembly components over the same capabilities and governor.

A Python circuit is compiled by componentize-py (``build_python.py``) into a component that
imports only ``circuit:script/*``. ``ComponentHost`` is the component half of ``Runtime``: the
same engine, epoch ticker and on-disk cache, the same capability functions and governor.
``Runtime.load`` hands it any binary whose preamble says "component". Every execution gets a
fresh store armed with fuel, the memory cap and the epoch deadline before instantiation, and a
fresh instance: a trapped instance is never reused (there is no component ``InstancePre``).

The per-execution context is found through a thread-local stack, not the store's data, so no
store/context reference cycle exists.
"""

from __future__ import annotations

import ctypes
import hashlib
import os
import threading
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import structlog
import wasmtime
import wasmtime.component as wc
from wasmtime import _ffi as ffi
from wasmtime.component import _types as wc_types

from .capabilities import http as http_cap
from .capabilities import limits as limits_cap
from .capabilities import log as log_cap
from .capabilities import records as records_cap
from .capabilities.codec import decode
from .context import ExecutionContext
from .engine import MAX_TABLE_ELEMENTS, ModuleCache
from .errors import CatchableError, ExecutionTimeout, GuestFault, LimitExceeded, Rejected
from .invocation import Invocation, trap_reason
from .invocation import timeout_invocation as _timeout

Arm = Callable[[wasmtime.Store, ExecutionContext], None]

log = structlog.get_logger("circuit.components")

MAX_COMPONENT_BYTES = 48 * 1024 * 1024
DML_OPS = ("insert", "update", "upsert", "delete", "undelete")
LOG_LEVELS = ("debug", "info", "warn", "error")
HANDLE_EXPORT = "handle"
INTERFACES = ("records", "http", "log", "limits")
ABI_VERSION = "1.0.0"


def is_component(wasm: bytes) -> bool:
    """Whether ``wasm`` is a component: the wasm magic, then layer 1 (core modules are layer 0)."""
    return wasm[:4] == b"\x00asm" and wasm[6:8] == b"\x01\x00"


@dataclass(frozen=True)
class CircuitComponent:
    """A compiled Python-guest component, ready for fresh instances."""

    sha256: str
    component: wc.Component
    from_disk_cache: bool


# -- fast path for list<u8> ----------------------------------------------------------------

_VAL_SIZE = ctypes.sizeof(ffi.wasmtime_component_val_t)
_VAL_PAYLOAD = ffi.wasmtime_component_val_t.of.offset
_U8_KIND = bytes([ffi.WASMTIME_COMPONENT_U8.value])
_fast_path_installed = False


def install_bytes_fast_path() -> None:
    """Make wasmtime-py convert ``list<u8>`` with slice copies instead of one ctypes call per byte.

    wasmtime-py lowers a ``list<u8>`` as an array of ``wasmtime_component_val_t`` (32 bytes
    each: kind, then the u8 payload) and fills it element by element in Python, ~2 us per
    byte. Here the array is built in a ``bytearray`` with two strided slice assignments and
    copied once; lifting reads it back with one strided slice. Other list types are left to
    wasmtime-py. Process-wide and idempotent.
    """
    global _fast_path_installed
    if _fast_path_installed:
        return
    original_to_c = wc_types.ListType.convert_to_c
    original_from_c = wc_types.ListType.convert_from_c

    def convert_to_c(self: Any, store: Any, val: Any, ptr: Any) -> None:
        if not (isinstance(val, bytes) and self._is_bytes()):
            original_to_c(self, store, val, ptr)
            return
        n = len(val)
        raw = ffi.wasmtime_component_vallist_t()
        ffi.wasmtime_component_vallist_new_uninit(raw, n)
        if n:
            buf = bytearray(n * _VAL_SIZE)
            buf[0::_VAL_SIZE] = _U8_KIND * n
            buf[_VAL_PAYLOAD::_VAL_SIZE] = val
            ctypes.memmove(raw.data, (ctypes.c_char * len(buf)).from_buffer(buf), len(buf))
        ptr.contents.kind = ffi.WASMTIME_COMPONENT_LIST
        ptr.contents.of.list = raw

    def convert_from_c(self: Any, c: Any) -> Any:
        if c.kind != ffi.WASMTIME_COMPONENT_LIST.value or not self._is_bytes():
            return original_from_c(self, c)
        try:
            n = c.of.list.size
            return ctypes.string_at(c.of.list.data, n * _VAL_SIZE)[_VAL_PAYLOAD::_VAL_SIZE] if n else b""
        finally:
            ffi.wasmtime_component_valtuple_delete(ctypes.byref(c.of.tuple))

    wc_types.ListType.convert_to_c = convert_to_c  # type: ignore[method-assign]
    wc_types.ListType.convert_from_c = convert_from_c  # type: ignore[method-assign]
    _fast_path_installed = True


# -- the execution context of the running component, per thread -----------------------------

_local = threading.local()


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


def link_components(linker: wc.Linker) -> None:
    """Define the four ``circuit:script`` interfaces over the capability functions."""
    functions: dict[str, dict[str, Callable[..., Any]]] = {
        "records": {"query": _query, "dml": _dml},
        "http": {"callout": _callout},
        "log": {"write": _write},
        "limits": {"usage": _usage},
    }
    with linker.root() as root:
        for interface, funcs in functions.items():
            with root.add_instance(f"circuit:script/{interface}@1.0.0") as instance:
                for name, func in funcs.items():
                    instance.add_func(name, func)


class ComponentHost:
    """Loads and runs components for one ``Runtime`` (its engine and on-disk cache)."""

    def __init__(self, engine: wasmtime.Engine, cache: ModuleCache, testing: bool = False) -> None:
        install_bytes_fast_path()
        self.engine = engine
        self.cache = cache
        self.testing = testing
        self.linker = wc.Linker(engine)
        link_components(self.linker)
        self.allowed_imports = frozenset(f"circuit:script/{name}@{ABI_VERSION}" for name in INTERFACES)
        self._components: dict[str, CircuitComponent] = {}
        self._lock = threading.Lock()

    def _component_path(self, sha256: str) -> Path | None:
        directory = self.cache.directory
        return None if directory is None else directory / f"{ModuleCache.key(sha256)}.component.cwasm"

    def load(self, wasm: bytes) -> CircuitComponent:
        """Validate and compile ``wasm`` (seconds), or deserialize it from the disk cache (milliseconds)."""
        if len(wasm) > MAX_COMPONENT_BYTES:
            raise Rejected(f"component is {len(wasm)} bytes, over the {MAX_COMPONENT_BYTES} byte limit")
        sha256 = hashlib.sha256(wasm).hexdigest()
        with self._lock:
            cached = self._components.get(sha256)
        if cached is not None:
            return cached
        path = self._component_path(sha256)
        component: wc.Component | None = None
        if path is not None and path.exists():
            try:
                component = wc.Component.deserialize_file(self.engine, str(path))
            except wasmtime.WasmtimeError as exc:
                log.warning("discarding unreadable compiled component", path=str(path), error=str(exc))
                path.unlink(missing_ok=True)
        from_disk = component is not None
        if component is None:
            try:
                component = wc.Component(self.engine, wasm)
            except wasmtime.WasmtimeError as exc:
                raise Rejected(f"invalid component: {_cause(str(exc))}") from None
        self._validate(component)
        if path is not None and not from_disk:
            tmp = path.with_suffix(f".{os.getpid()}.{threading.get_ident()}.tmp")
            tmp.write_bytes(component.serialize())
            os.replace(tmp, path)
        loaded = CircuitComponent(sha256, component, from_disk)
        with self._lock:
            self._components.setdefault(sha256, loaded)
        log.debug("component loaded", sha256=sha256, from_disk_cache=from_disk)
        return loaded

    def _validate(self, component: wc.Component) -> None:
        """The component may import only the ABI's interfaces and must export ``handle``."""
        kind = component.type
        imports = sorted(kind.imports(self.engine))
        foreign = [name for name in imports if name not in self.allowed_imports]
        if foreign:
            allowed = ", ".join(sorted(self.allowed_imports))
            wasi = (
                " (build with componentize-py --stub-wasi: circuits get no WASI)"
                if any(name.startswith("wasi:") for name in foreign)
                else ""
            )
            raise Rejected(f"component imports {', '.join(foreign)}; a circuit may import only {allowed}{wasi}")
        if HANDLE_EXPORT not in kind.exports(self.engine):
            raise Rejected(f"component exports no {HANDLE_EXPORT!r} function (world circuit, abi/circuit.wit)")

    def invoke(self, loaded: CircuitComponent, event: bytes, context: ExecutionContext, arm: Arm) -> Invocation:
        """Run ``handle(event)`` in a fresh store and instance; never raises because of the guest."""
        governor = context.governor
        limits = governor.limits
        store = wasmtime.Store(self.engine)
        store.set_limits(
            memory_size=limits.memory_bytes, table_elements=MAX_TABLE_ELEMENTS, instances=64, tables=64, memories=16
        )
        context.store = store
        stack: list[ExecutionContext] = _local.__dict__.setdefault("stack", [])
        stack.append(context)
        try:
            arm(store, context)
            governor.charge("input_bytes", len(event))
            instance = self.linker.instantiate(store, loaded.component)
            handle = instance.get_func(store, HANDLE_EXPORT)
            if handle is None:
                raise GuestFault("component exports no handle function")
            result = handle(store, event)
            if isinstance(result, str):
                return _guest_error(result, limits.memory_bytes)
            if not isinstance(result, bytes):
                raise GuestFault("handle returned an unexpected value")
            governor.charge("output_bytes", len(result))
            return Invocation("ok", output=decode(result, "handle output"))
        except LimitExceeded as exc:
            return Invocation("limit_exceeded", error_kind=exc.kind, error_message=str(exc), resource=exc.resource)
        except ExecutionTimeout as exc:
            return _timeout(str(exc))
        except GuestFault as exc:
            return Invocation("trap", error_kind="trap", error_message=str(exc))
        except wasmtime.Trap as trap:
            return _from_trap(trap.trap_code, trap_reason(trap), context)
        except wasmtime.WasmtimeError as exc:
            # Component calls report traps as errors whose cause names them.
            return _from_trap(None, _cause(str(exc)), context)
        except Exception as exc:  # a host bug must still not take the process down
            log.exception("host error during component execution")
            return Invocation("error", error_kind="host_error", error_message=f"{type(exc).__name__}: {exc}")
        finally:
            stack.pop()
            context.measure()
            context.store = None


def _guest_error(message: str, memory_cap: int) -> Invocation:
    """``handle`` returned err. A ``MemoryError`` means the interpreter hit the memory cap."""
    if message.startswith("MemoryError"):
        return Invocation(
            "limit_exceeded",
            error_kind="limit_exceeded",
            error_message=f"limit exceeded: memory_bytes (the guest's memory reached the cap of {memory_cap} bytes: "
            f"{message})",
            resource="memory_bytes",
        )
    return Invocation("error", error_kind="guest_error", error_message=message)


def _from_trap(code: wasmtime.TrapCode | None, message: str, context: ExecutionContext) -> Invocation:
    governor = context.governor
    lowered = message.lower()
    if code == wasmtime.TrapCode.OUT_OF_FUEL or "all fuel consumed" in lowered or "out of fuel" in lowered:
        fuel = governor.limit("fuel")
        err = LimitExceeded("fuel", fuel, 1, fuel)
        return Invocation("limit_exceeded", error_kind=err.kind, error_message=str(err), resource="fuel")
    if code == wasmtime.TrapCode.INTERRUPT or "interrupt" in lowered:
        return _timeout(f"wall-clock deadline of {governor.limit('timeout_ms')} ms reached")
    if "memory" in lowered and ("limit" in lowered or "minimum size" in lowered):
        err = LimitExceeded("memory_bytes", 0, 0, governor.limit("memory_bytes"))
        return Invocation("limit_exceeded", error_kind=err.kind, error_message=message, resource="memory_bytes")
    return Invocation("trap", error_kind="trap", error_message=message)


def _cause(text: str) -> str:
    """The cause of a wasmtime error without its backtrace."""
    _, _, cause = text.partition("Caused by:")
    lines = [line.strip() for line in (cause or text).strip().splitlines() if line.strip()]
    lines = [line.split(": ", 1)[1] if line.split(":", 1)[0].isdigit() else line for line in lines]
    return ": ".join(lines) or "unknown error"
