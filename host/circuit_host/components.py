"""Python guests: build a circuit into a WebAssembly component, and run it over the same host.

A Python circuit (``circuit.py`` plus ``circuit.toml``) is compiled by componentize-py
against ``abi/circuit.wit`` with ``--stub-wasi``, so the component imports only
``circuit:script/*``. ``ComponentRuntime`` is a ``Runtime`` that also runs such components
with ``wasmtime.component``: same engine, epoch ticker and on-disk cache, the same
capability functions and governor. Every execution gets a fresh store armed with fuel, the
memory cap and the epoch deadline before instantiation, and a fresh instance: a trapped
instance is never reused (there is no component ``InstancePre``; instantiation is ~ms).

The per-execution context is found through a thread-local stack, not the store's data, so
no store/context reference cycle exists.
"""

from __future__ import annotations

import ctypes
import hashlib
import os
import shutil
import subprocess
import sys
import threading
import time
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
from .engine import ModuleCache
from .errors import CatchableError, ExecutionTimeout, GuestFault, LimitExceeded, Rejected
from .runtime import DEFAULT_MEMORY_CAP, MAX_TABLE_ELEMENTS, CircuitModule, Invocation, Runtime, _timeout, trap_reason

log = structlog.get_logger("circuit.components")

REPO = Path(__file__).resolve().parents[2]
ABI_DIR = REPO / "abi"
SDK_DIR = REPO / "guest_sdk" / "python"
ENTRY_MODULE = "circuit_sdk._entry"
MAX_COMPONENT_BYTES = 64 * 1024 * 1024
DML_OPS = ("insert", "update", "upsert", "delete", "undelete")
LOG_LEVELS = ("debug", "info", "warn", "error")
HANDLE_EXPORT = "handle"


def is_python_circuit(directory: Path) -> bool:
    """A circuit directory whose code is ``circuit.py`` (or a ``circuit`` package)."""
    return (directory / "circuit.py").is_file() or (directory / "circuit" / "__init__.py").is_file()


def componentize_py() -> str:
    """The componentize-py executable next to this interpreter, else on PATH."""
    local = Path(sys.executable).with_name("componentize-py")
    if local.exists():
        return str(local)
    found = shutil.which("componentize-py")
    if found is None:
        raise Rejected("componentize-py is not installed (pip install componentize-py)")
    return found


def build_python_circuit(directory: Path, out: Path, extra_paths: tuple[Path, ...] = ()) -> Path:
    """Compile a Python circuit into a WASI-free component at ``out`` (10-30 s)."""
    if not is_python_circuit(directory):
        raise Rejected(f"{directory} has no circuit.py")
    out.parent.mkdir(parents=True, exist_ok=True)
    command = [componentize_py(), "-d", str(ABI_DIR), "-w", "circuit", "componentize", "--stub-wasi"]
    for path in (directory, *extra_paths, SDK_DIR):
        command += ["-p", str(path)]
    command += [ENTRY_MODULE, "-o", str(out)]
    done = subprocess.run(command, capture_output=True, text=True, check=False)
    if done.returncode != 0 or not out.exists():
        detail = (done.stderr or done.stdout).strip()
        raise Rejected(f"componentize-py failed for {directory}:\n{detail}")
    return out


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


class ComponentRuntime(Runtime):
    """A ``Runtime`` that also runs Python-guest components (``CircuitComponent``)."""

    def __init__(self, cache_dir: Path | None = None, **kwargs: Any) -> None:
        super().__init__(cache_dir, **kwargs)
        install_bytes_fast_path()
        self.component_linker = wc.Linker(self.engine)
        link_components(self.component_linker)
        self._components: dict[str, CircuitComponent] = {}

    def _component_path(self, sha256: str) -> Path | None:
        directory = self.cache.directory
        return None if directory is None else directory / f"{ModuleCache.key(sha256)}.component.cwasm"

    def load_component(self, wasm: bytes) -> CircuitComponent:
        """Compile ``wasm`` (seconds), or deserialize it from the disk cache (milliseconds)."""
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
                raise Rejected(f"invalid component: {str(exc).strip().splitlines()[0]}") from None
            if path is not None:
                tmp = path.with_suffix(f".{os.getpid()}.{threading.get_ident()}.tmp")
                tmp.write_bytes(component.serialize())
                os.replace(tmp, path)
        loaded = CircuitComponent(sha256, component, from_disk)
        with self._lock:
            self._components.setdefault(sha256, loaded)
        return loaded

    def load_component_file(self, path: Path) -> CircuitComponent:
        try:
            return self.load_component(path.read_bytes())
        except OSError as exc:
            raise Rejected(f"cannot read component {path}: {exc.strerror}") from None

    def invoke(self, module: CircuitModule | CircuitComponent, event: bytes, context: ExecutionContext) -> Invocation:
        if isinstance(module, CircuitComponent):
            return self.invoke_component(module, event, context)
        return super().invoke(module, event, context)

    def invoke_component(self, loaded: CircuitComponent, event: bytes, context: ExecutionContext) -> Invocation:
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
            self._arm(store, context)
            governor.charge("input_bytes", len(event))
            instance = self.component_linker.instantiate(store, loaded.component)
            handle = instance.get_func(store, HANDLE_EXPORT)
            if handle is None:
                raise GuestFault("component exports no handle function")
            result = handle(store, event)
            if isinstance(result, str):
                return Invocation("error", error_kind="guest_error", error_message=result)
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
            return self._from_component_trap(trap, context)
        except wasmtime.WasmtimeError as exc:
            # Component calls report traps as errors whose cause names them.
            message = _cause(str(exc))
            if "interrupt" in message:
                return _timeout(f"wall-clock deadline of {governor.limit('timeout_ms')} ms reached")
            if "all fuel consumed" in message or "out of fuel" in message:
                fuel = governor.limit("fuel")
                err = LimitExceeded("fuel", fuel, 1, fuel)
                return Invocation("limit_exceeded", error_kind=err.kind, error_message=str(err), resource="fuel")
            return Invocation("trap", error_kind="trap", error_message=message)
        except Exception as exc:  # a host bug must still not take the process down
            log.exception("host error during component execution")
            return Invocation("error", error_kind="host_error", error_message=f"{type(exc).__name__}: {exc}")
        finally:
            stack.pop()
            context.measure()
            context.store = None

    def _from_component_trap(self, trap: wasmtime.Trap, context: ExecutionContext) -> Invocation:
        code = trap.trap_code
        governor = context.governor
        if code == wasmtime.TrapCode.OUT_OF_FUEL:
            fuel = governor.limit("fuel")
            err = LimitExceeded("fuel", fuel, 1, fuel)
            return Invocation("limit_exceeded", error_kind=err.kind, error_message=str(err), resource="fuel")
        if code == wasmtime.TrapCode.INTERRUPT:
            return _timeout(f"wall-clock deadline of {governor.limit('timeout_ms')} ms reached")
        return Invocation("trap", error_kind="trap", error_message=trap_reason(trap))


def _cause(text: str) -> str:
    """The cause of a wasmtime error without its backtrace."""
    _, _, cause = text.partition("Caused by:")
    lines = [line.strip() for line in (cause or text).strip().splitlines() if line.strip()]
    lines = [line.split(": ", 1)[1] if line.split(":", 1)[0].isdigit() else line for line in lines]
    return ": ".join(lines) or "unknown error"


def timed_load(runtime: ComponentRuntime, wasm: bytes) -> tuple[CircuitComponent, float]:
    """Load a component and report how long it took, in ms (for benchmarks and reports)."""
    started = time.perf_counter()
    loaded = runtime.load_component(wasm)
    return loaded, (time.perf_counter() - started) * 1000


__all__ = [
    "DEFAULT_MEMORY_CAP",
    "CircuitComponent",
    "ComponentRuntime",
    "build_python_circuit",
    "is_python_circuit",
    "link_components",
]
