"""Python guests: run WebAssembly components over the same capabilities and governor.

A Python circuit is compiled by componentize-py (``build_python.py``) into a component that
imports only ``circuit:script/*``. ``ComponentHost`` is the component half of ``Runtime``: the
same engine, epoch ticker and on-disk cache, the same capability functions and governor.
``Runtime.load`` hands it any binary whose preamble says "component". Every execution gets a
fresh store armed with fuel, the memory cap and the epoch deadline before instantiation, and a
fresh instance: a trapped instance is never reused (there is no component ``InstancePre``).
How values cross the boundary (the linker's host functions, the fast paths, the running
execution's context) is ``abi/component_binding.py``'s job.
"""

from __future__ import annotations

import hashlib
import os
import threading
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import structlog
import wasmtime
import wasmtime.component as wc

from ..abi.codec import decode
from ..abi.component_binding import (
    ABI_VERSION,
    HANDLE_EXPORT,
    INTERFACES,
    Plan,
    call_handle,
    install_bytes_fast_path,
    link_components,
    plan_for,
    running,
    signature_problems,
)
from ..errors import GuestFault, Rejected, Uncatchable
from ..execution.context import ExecutionContext
from .engine import MAX_TABLE_ELEMENTS, ModuleCache
from .invocation import (
    Invocation,
    fuel_exhausted_invocation,
    host_error_invocation,
    memory_limit_invocation,
    memory_refused_invocation,
    outcome_of,
    trap_reason,
)
from .invocation import timeout_invocation as _timeout

Arm = Callable[[wasmtime.Store, ExecutionContext], None]

log = structlog.get_logger("circuit.components")

MAX_COMPONENT_BYTES = 48 * 1024 * 1024
TEST_EXPORTS = ("list-tests", "run-test")


def is_component(wasm: bytes) -> bool:
    """Whether ``wasm`` is a component: the wasm magic, then layer 1 (core modules are layer 0)."""
    return wasm[:4] == b"\x00asm" and wasm[6:8] == b"\x01\x00"


@dataclass(frozen=True)
class CircuitComponent:
    """A compiled Python-guest component, ready for fresh instances."""

    sha256: str
    component: wc.Component
    from_disk_cache: bool
    plan: Plan  # how it is called and linked, decided once from its types


class ComponentHost:
    """Loads and runs components for one ``Runtime`` (its engine and on-disk cache)."""

    def __init__(self, engine: wasmtime.Engine, cache: ModuleCache, testing: bool = False) -> None:
        install_bytes_fast_path()
        self.engine = engine
        self.cache = cache
        self.testing = testing
        self.linker = wc.Linker(engine)
        link_components(self.linker, testing)
        interfaces = (*INTERFACES, "testing") if testing else INTERFACES
        self.allowed_imports = frozenset(f"circuit:script/{name}@{ABI_VERSION}" for name in interfaces)
        self.required_exports = (HANDLE_EXPORT, *TEST_EXPORTS) if testing else (HANDLE_EXPORT,)
        # Called with (store, instance) after every instance a test runtime ran: how the guest's
        # own coverage is collected. Never set in production.
        self.observer: Callable[[wasmtime.Store, wc.Instance], None] | None = None
        self._components: dict[str, CircuitComponent] = {}
        self._generic_linker: wc.Linker | None = None  # for components the fast paths do not fit
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
        loaded = CircuitComponent(sha256, component, from_disk, plan_for(self.engine, component))
        with self._lock:
            self._components.setdefault(sha256, loaded)
        log.debug("component loaded", sha256=sha256, from_disk_cache=from_disk)
        return loaded

    def _validate(self, component: wc.Component) -> None:
        """The component may import only the ABI's interfaces, with the ABI's types, and must export
        ``handle`` (a test component also ``list-tests`` and ``run-test``)."""
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
        exports = kind.exports(self.engine)
        for name in self.required_exports:
            if name not in exports:
                world = "circuit-test, abi/circuit-test.wit" if self.testing else "circuit, abi/circuit.wit"
                raise Rejected(f"component exports no {name!r} function (world {world})")
        problems = signature_problems(self.engine, component)
        if problems:
            raise Rejected("component does not match the ABI: " + "; ".join(problems))

    def _generic(self) -> wc.Linker:
        """A linker converting every value through wasmtime-py, made the first time one is needed."""
        with self._lock:
            if self._generic_linker is None:
                self._generic_linker = wc.Linker(self.engine)
                link_components(self._generic_linker, self.testing, direct=False)
            return self._generic_linker

    def invoke(self, loaded: CircuitComponent, event: bytes, context: ExecutionContext, arm: Arm) -> Invocation:
        """Run ``handle(event)`` in a fresh store and instance; never raises because of the guest."""
        memory_cap = context.governor.limits.memory_bytes
        plan = loaded.plan

        def call(instance: wc.Instance, store: wasmtime.Store) -> Invocation:
            if plan.direct_handle:
                result = call_handle(store, instance, plan.handle, event)
            else:
                handle = instance.get_func(store, HANDLE_EXPORT)
                if handle is None:
                    raise GuestFault("component exports no handle function")
                result = handle(store, event)
            if isinstance(result, str):
                return _guest_error(result, memory_cap)
            if not isinstance(result, bytes):
                raise GuestFault("handle returned an unexpected value")
            context.governor.charge("output_bytes", len(result))
            return Invocation("ok", output=decode(result, "handle output"))

        return self.run(loaded, context, call, arm, input_bytes=len(event))

    def run(
        self,
        loaded: CircuitComponent,
        context: ExecutionContext,
        call: Callable[[wc.Instance, wasmtime.Store], Invocation],
        arm: Arm,
        input_bytes: int = 0,
    ) -> Invocation:
        """Instantiate ``loaded`` in a fresh, armed store and run ``call(instance, store)``.

        Every way the guest can fail becomes an ``Invocation``; ``input_bytes`` is charged before
        instantiation. ``observer`` (tests only) sees every instance afterwards, trap or not.
        """
        governor = context.governor
        limits = governor.limits
        store = wasmtime.Store(self.engine)
        store.set_limits(
            memory_size=limits.memory_bytes, table_elements=MAX_TABLE_ELEMENTS, instances=64, tables=64, memories=16
        )
        context.store = store
        instance: wc.Instance | None = None
        try:
            with running(context):
                arm(store, context)
                governor.charge("input_bytes", input_bytes)
                linker = self.linker if loaded.plan.direct_imports else self._generic()
                instance = linker.instantiate(store, loaded.component)
                return call(instance, store)
        except Uncatchable as exc:  # a limit, the deadline or a fault, raised by the host
            return outcome_of(exc)
        except wasmtime.Trap as trap:
            return _from_trap(trap.trap_code, trap_reason(trap), context)
        except wasmtime.WasmtimeError as exc:
            # Component calls report traps as errors whose cause names them.
            return _from_trap(None, _cause(str(exc)), context)
        except Exception as exc:  # a host bug must still not take the process down
            log.exception("host error during component execution")
            return host_error_invocation(exc)
        finally:
            if self.observer is not None and instance is not None:
                self.observer(store, instance)
            context.measure()
            context.store = None


def _guest_error(message: str, memory_cap: int) -> Invocation:
    """``handle`` returned err. A ``MemoryError`` means the interpreter hit the memory cap."""
    if message.startswith("MemoryError"):
        return memory_limit_invocation(memory_cap, f"and the interpreter raised {message}")
    return Invocation("error", error_kind="guest_error", error_message=message)


def _from_trap(code: wasmtime.TrapCode | None, message: str, context: ExecutionContext) -> Invocation:
    governor = context.governor
    lowered = message.lower()
    if code == wasmtime.TrapCode.OUT_OF_FUEL or "all fuel consumed" in lowered or "out of fuel" in lowered:
        return fuel_exhausted_invocation(governor.limit("fuel"))
    if code == wasmtime.TrapCode.INTERRUPT or "interrupt" in lowered:
        return _timeout(f"wall-clock deadline of {governor.limit('timeout_ms')} ms reached")
    if "memory" in lowered and ("limit" in lowered or "minimum size" in lowered):
        return memory_refused_invocation(governor.limit("memory_bytes"), message)
    return Invocation("trap", error_kind="trap", error_message=message)


def _cause(text: str) -> str:
    """The cause of a wasmtime error without its backtrace."""
    _, _, cause = text.partition("Caused by:")
    lines = [line.strip() for line in (cause or text).strip().splitlines() if line.strip()]
    lines = [line.split(": ", 1)[1] if line.split(":", 1)[0].isdigit() else line for line in lines]
    return ": ".join(lines) or "unknown error"
