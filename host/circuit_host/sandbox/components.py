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
import threading
from collections.abc import Callable, Sequence
from dataclasses import replace

import structlog
import wasmtime
import wasmtime.component as wc

from ..abi.codec import decode
from ..abi.component_binding import (
    call_handle,
    install_bytes_fast_path,
    link_components,
    plan_for,
    signature_problems,
)
from ..abi.signatures import HANDLE_EXPORT, HostFunction, abi_version_of
from ..coverage._leb import read_u
from ..errors import GuestFault, Rejected
from ..execution.context import ExecutionContext
from .engine import ModuleCache
from .invocation import Invocation, memory_limit_invocation
from .loaded import CircuitComponent
from .session import COMPONENT_STORE, StoreShape, error_cause, run_session

log = structlog.get_logger("circuit.components")

MAX_COMPONENT_BYTES = 48 * 1024 * 1024
TEST_EXPORTS = ("list-tests", "run-test")
_CORE_MODULE_SECTION, _COMPONENT_SECTION, _MEMORY_SECTION = 1, 4, 5


def is_component(wasm: bytes) -> bool:
    """Whether ``wasm`` is a component: the wasm magic, then layer 1 (core modules are layer 0)."""
    return wasm[:4] == b"\x00asm" and wasm[6:8] == b"\x01\x00"


def defined_memories(wasm: bytes) -> int:
    """How many linear memories the core modules of component ``wasm`` define (nested components too).

    Each definition is counted once: a component instantiating a module twice needs more memories
    than this, and the store (limited to this many) refuses to create them, so an undercount fails
    closed. Called on a component wasmtime has already validated.
    """
    count, pos = 0, 8
    while pos < len(wasm):
        section = wasm[pos]
        size, pos = read_u(wasm, pos + 1, 32)
        payload = wasm[pos : pos + size]
        if section == _COMPONENT_SECTION:
            count += defined_memories(payload)
        elif section == _CORE_MODULE_SECTION:
            inner = 8
            while inner < len(payload):
                inner_section = payload[inner]
                inner_size, inner = read_u(payload, inner + 1, 32)
                if inner_section == _MEMORY_SECTION:
                    count += read_u(payload, inner, 32)[0]
                inner += inner_size
        pos += size
    return count


class ComponentHost:
    """Loads and runs components for one ``Runtime`` (its engine, host functions and on-disk cache)."""

    def __init__(self, engine: wasmtime.Engine, cache: ModuleCache, host_functions: Sequence[HostFunction]) -> None:
        install_bytes_fast_path()
        self.engine = engine
        self.cache = cache
        self.host_functions = tuple(host_functions)
        self.testing = any(function.test_only for function in self.host_functions)
        self.linker = wc.Linker(engine)
        link_components(self.linker, self.host_functions)
        self.allowed_imports = frozenset(function.module for function in self.host_functions)
        self.required_exports = (HANDLE_EXPORT, *TEST_EXPORTS) if self.testing else (HANDLE_EXPORT,)
        # Called with (store, instance) after every instance a test runtime ran: how the guest's
        # own coverage is collected. Never set in production.
        self.observer: Callable[[wasmtime.Store, wc.Instance], None] | None = None
        self._components: dict[str, CircuitComponent] = {}
        self._shapes: dict[str, StoreShape] = {}  # per component: its memories share the memory cap
        self._generic_linker: wc.Linker | None = None  # for components the fast paths do not fit
        self._lock = threading.Lock()

    def load(self, wasm: bytes) -> CircuitComponent:
        """Validate and compile ``wasm`` (seconds), or deserialize it from the disk cache (milliseconds)."""
        if len(wasm) > MAX_COMPONENT_BYTES:
            raise Rejected(f"component is {len(wasm)} bytes, over the {MAX_COMPONENT_BYTES} byte limit")
        sha256 = hashlib.sha256(wasm).hexdigest()
        with self._lock:
            cached = self._components.get(sha256)
        if cached is not None:
            return cached
        component = self.cache.load_component(self.engine, sha256)
        from_disk = component is not None
        if component is None:
            try:
                component = wc.Component(self.engine, wasm)
            except wasmtime.WasmtimeError as exc:
                raise Rejected(f"invalid component: {error_cause(str(exc))}") from None
        self._validate(component)
        memories = defined_memories(wasm)
        if memories > COMPONENT_STORE.memories:
            raise Rejected(f"component defines {memories} memories, over the limit of {COMPONENT_STORE.memories}")
        if not from_disk:
            self.cache.store(sha256, component)
        plan = plan_for(self.engine, component, self.host_functions)
        version = abi_version_of(component.type.imports(self.engine))
        loaded = CircuitComponent(sha256, component, from_disk, plan, version)
        shape = replace(COMPONENT_STORE, memories=max(memories, 1), capped_memories=max(memories, 1))
        with self._lock:
            self._shapes.setdefault(sha256, shape)
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
        problems = signature_problems(self.engine, component, self.host_functions)
        if problems:
            raise Rejected("component does not match the ABI: " + "; ".join(problems))

    def _generic(self) -> wc.Linker:
        """A linker converting every value through wasmtime-py, made the first time one is needed."""
        with self._lock:
            if self._generic_linker is None:
                self._generic_linker = wc.Linker(self.engine)
                link_components(self._generic_linker, self.host_functions, direct=False)
            return self._generic_linker

    def invoke(self, loaded: CircuitComponent, event: bytes, context: ExecutionContext) -> Invocation:
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

        return self.run(loaded, context, call, input_bytes=len(event))

    def run(
        self,
        loaded: CircuitComponent,
        context: ExecutionContext,
        call: Callable[[wc.Instance, wasmtime.Store], Invocation],
        input_bytes: int = 0,
    ) -> Invocation:
        """Instantiate ``loaded`` in a fresh, armed store and run ``call(instance, store)``.

        Every way the guest can fail becomes an ``Invocation``; ``input_bytes`` is charged before
        instantiation. ``observer`` (tests only) sees every instance afterwards, trap or not.
        """
        linker = self.linker if loaded.plan.direct_imports else self._generic()
        context.abi_version = loaded.abi_version

        def instantiate(store: wasmtime.Store) -> wc.Instance:
            return linker.instantiate(store, loaded.component)

        shape = self._shapes.get(loaded.sha256, COMPONENT_STORE)
        return run_session(self.engine, context, shape, instantiate, call, input_bytes, self.observer)


def _guest_error(message: str, memory_cap: int) -> Invocation:
    """``handle`` returned err. A ``MemoryError`` means the interpreter hit the memory cap."""
    if message.startswith("MemoryError"):
        return memory_limit_invocation(memory_cap, f"and the interpreter raised {message}")
    return Invocation("error", error_kind="guest_error", error_message=message)
