"""The sandboxed runtime: load guests once, run each call in a fresh store.

``Runtime.load`` validates and compiles (or fetches from the cache) a core module or a component
and links it against the runtime's host functions (``abi/host_functions.py``, plus the test
world's rows for a test runtime). ``Runtime.invoke`` runs one ``handle`` call in a sandbox session
(``session.py``): a new store armed before instantiation, and every way a guest can fail turned
into an ``Invocation`` with a status. The host never raises because of a guest.
"""

from __future__ import annotations

import hashlib
import threading
from collections.abc import Callable, Sequence
from dataclasses import replace
from pathlib import Path
from typing import Any

import structlog
import wasmtime
import wasmtime.component as wc

from ..abi.codec import decode
from ..abi.core_exports import CoreInstance, ExportPositions
from ..abi.guest_memory import GuestMemory
from ..abi.host_functions import ABI_FUNCTIONS
from ..abi.lowering import link_core
from ..abi.signatures import HANDLE_EXPORT, HostFunction, abi_version_of
from ..abi.validation import compile_checked, validate
from ..errors import GuestFault, Rejected
from ..execution.context import ExecutionContext
from ..execution.limits import LimitsProfile
from .components import ComponentHost, is_component
from .engine import EpochTicker, ModuleCache, make_engine
from .invocation import Invocation
from .loaded import CircuitComponent, CircuitModule, Loaded
from .session import CORE_MODULE_STORE, run_session

log = structlog.get_logger("circuit.runtime")

MAX_MODULE_BYTES = 32 * 1024 * 1024
DEFAULT_MEMORY_CAP = LimitsProfile().memory_bytes

__all__ = ["CircuitComponent", "CircuitModule", "Loaded", "Runtime"]


class Runtime:
    """One engine, one linker, one epoch ticker, shared by every execution in the process.

    ``host_functions`` are the imports guests may use: the ABI's by default. A test runtime
    (``circuit test``, the deploy gate; made by ``testing.capability.runtime_for_tests``) adds the test world's
    rows and loads only test modules; a runtime without them never links ``testing``, so
    production rejects modules that import it.
    """

    def __init__(
        self,
        cache_dir: Path | None = None,
        max_module_bytes: int = MAX_MODULE_BYTES,
        host_functions: Sequence[HostFunction] = ABI_FUNCTIONS,
    ) -> None:
        self.engine = make_engine()
        self.host_functions = tuple(host_functions)
        self.testing = any(function.test_only for function in self.host_functions)
        self.linker = wasmtime.Linker(self.engine)
        link_core(self.linker, self.host_functions)
        # Called with (store, instance) after every store this runtime ran, triggers included, trap or
        # not: how coverage reads an instrumented module's counters. Never set in production.
        self.store_observer: Callable[[wasmtime.Store, wasmtime.Instance], None] | None = None
        self.cache = ModuleCache(cache_dir)
        self.max_module_bytes = max_module_bytes
        self._loaded: dict[tuple[str, int], CircuitModule] = {}
        self._components: ComponentHost | None = None  # made on the first component
        self._lock = threading.Lock()
        self._ticker = EpochTicker(self.engine)
        self._closed = False

    def close(self) -> None:
        """Stop the epoch ticker. Idempotent."""
        if not self._closed:
            self._closed = True
            self._ticker.close()

    def __enter__(self) -> Runtime:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- loading ---------------------------------------------------------------------------

    def load_file(self, path: Path, memory_cap: int = DEFAULT_MEMORY_CAP) -> Loaded:
        """Load a ``.wasm`` (or, for convenience, a ``.wat``) file."""
        try:
            data = path.read_bytes()
        except OSError as exc:
            raise Rejected(f"cannot read module {path}: {exc.strerror}") from None
        if path.suffix == ".wat":
            try:
                data = bytes(wasmtime.wat2wasm(data.decode("utf-8")))
            except (wasmtime.WasmtimeError, UnicodeDecodeError) as exc:
                raise Rejected(f"invalid WAT in {path}: {str(exc).strip().splitlines()[0]}") from None
        return self.load(data, memory_cap)

    def load(self, wasm: bytes, memory_cap: int = DEFAULT_MEMORY_CAP) -> Loaded:
        """Validate and compile ``wasm``; a module already seen is not compiled again.

        A core module (Zig, WAT, ...) becomes a ``CircuitModule``; a component (a Python
        circuit) a ``CircuitComponent``. ``memory_cap`` is the memory limit the module will run
        under: a core module declaring more initial memory is rejected here rather than failing
        at every instantiation (a component's is checked when it is instantiated).
        """
        if self._closed:
            raise RuntimeError("runtime is closed")
        if is_component(wasm):
            return self.components.load(wasm)
        return self.load_module(wasm, memory_cap)

    @property
    def components(self) -> ComponentHost:
        """The component half of this runtime, made on first use (it links a second linker)."""
        with self._lock:
            if self._components is None:
                self._components = ComponentHost(self.engine, self.cache, self.host_functions)
            return self._components

    def load_module(self, wasm: bytes, memory_cap: int = DEFAULT_MEMORY_CAP, extra_memories: int = 0) -> CircuitModule:
        """``load`` for a core module only (a component is rejected by the core validator).

        A circuit runs with one linear memory, capped at ``memory_cap``; a module defining more fails
        to instantiate (the store's limit is per memory, so a second one would double the cap).
        ``extra_memories`` is for memories the host itself added: the coverage instrumenter's counters.
        """
        if self._closed:
            raise RuntimeError("runtime is closed")
        sha256 = hashlib.sha256(wasm).hexdigest()
        with self._lock:
            cached = self._loaded.get((sha256, extra_memories))
        if cached is not None:
            validate(cached.module, memory_cap, self.host_functions)  # cheap; the cap may differ between callers
            return cached
        module = self.cache.load(self.engine, sha256)
        from_disk = module is not None
        if module is None:
            module = compile_checked(self.engine, wasm, self.max_module_bytes)
        validate(module, memory_cap, self.host_functions)
        if not from_disk:
            self.cache.store(sha256, module)
        loaded = CircuitModule(
            sha256=sha256,
            module=module,
            instance_pre=self.linker.instantiate_pre(module),
            exports=ExportPositions.of(module),
            has_initialize=any(e.name == "_initialize" for e in module.exports),
            from_disk_cache=from_disk,
            extra_memories=extra_memories,
            abi_version=abi_version_of(i.module for i in module.imports),
        )
        with self._lock:
            self._loaded.setdefault((sha256, extra_memories), loaded)
        log.debug("module loaded", sha256=sha256, from_disk_cache=from_disk)
        return loaded

    # -- executing -------------------------------------------------------------------------

    def invoke(self, module: Loaded, event: bytes, context: ExecutionContext) -> Invocation:
        """Run ``handle(event)`` in a fresh store; never raises because of the guest."""
        if isinstance(module, CircuitComponent):
            return self.components.invoke(module, event, context)
        return self._run_core(
            module, context, lambda instance, store: _call_handle(event, context, instance), input_bytes=len(event)
        )

    def run_component(
        self,
        loaded: CircuitComponent,
        context: ExecutionContext,
        call: Callable[[wc.Instance, wasmtime.Store], Invocation],
        input_bytes: int = 0,
    ) -> Invocation:
        """``run_in_store`` for a component: ``call(instance, store)`` in a fresh, armed store."""
        return self.components.run(loaded, context, call, input_bytes)

    def run_in_store(
        self,
        module: CircuitModule,
        context: ExecutionContext,
        call: Callable[[Any, wasmtime.Store], Invocation],
        input_bytes: int = 0,
    ) -> Invocation:
        """Instantiate ``module`` in a fresh, armed store and run ``call(exports, store)`` with
        wasmtime-py's exports mapping (the test runner calls the test world's exports through it).

        ``context.guest`` is set and ``_initialize`` has run when ``call`` starts. Every way the
        guest can fail becomes an ``Invocation``, as for ``invoke``. ``input_bytes`` is charged
        before the module is instantiated, so an oversized input never runs any guest code.
        """
        return self._run_core(
            module, context, lambda instance, store: call(instance.instance().exports(store), store), input_bytes
        )

    def _run_core(
        self,
        module: CircuitModule,
        context: ExecutionContext,
        call: Callable[[CoreInstance, wasmtime.Store], Invocation],
        input_bytes: int,
    ) -> Invocation:
        context.abi_version = module.abi_version

        def instantiate(store: wasmtime.Store) -> CoreInstance:
            return CoreInstance(store, module.instance_pre, module.exports)

        def run(instance: CoreInstance, store: wasmtime.Store) -> Invocation:
            context.guest = GuestMemory(store, instance.memory(), instance.func("cabi_realloc", 4, 1))
            if module.has_initialize:
                instance.func("_initialize", 0, 0)(store)
            return call(instance, store)

        shape = CORE_MODULE_STORE
        if module.extra_memories:
            shape = replace(shape, memories=shape.memories + module.extra_memories)
        observer = self.store_observer
        return run_session(
            self.engine,
            context,
            shape,
            instantiate,
            run,
            input_bytes,
            None if observer is None else lambda store, instance: observer(store, instance.instance()),
        )


def _call_handle(event: bytes, context: ExecutionContext, instance: CoreInstance) -> Invocation:
    governor = context.governor
    guest = context.guest
    assert guest is not None
    handle = instance.func(HANDLE_EXPORT, 2, 1)
    ptr, length = guest.allocate(event, "event buffer")
    retptr = handle(None, ptr, length)
    assert retptr is not None
    ok, payload = guest.read_result(retptr, "handle result", max_len=governor.remaining("output_bytes"))
    governor.charge("output_bytes", len(payload))
    if ok:
        output = decode(payload, "handle output")
    else:
        try:
            message = payload.decode("utf-8")
        except UnicodeDecodeError:
            raise GuestFault("handle err: message is not valid UTF-8") from None
    guest.call_back(instance.func("cabi_post_handle", 1, 0), retptr)
    if ok:
        return Invocation("ok", output=output)
    return Invocation("error", error_kind="guest_error", error_message=message)
