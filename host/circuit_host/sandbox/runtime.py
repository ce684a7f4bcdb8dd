"""The sandboxed runtime: load modules once, run each execution in a fresh store.

``Runtime.load`` validates and compiles (or fetches from the cache) a module and
pre-links it against the capabilities. ``Runtime.invoke`` runs one ``handle`` call in a
new ``Store`` whose fuel, memory cap and epoch deadline are armed *before*
instantiation, so a start function runs under them too, and turns every way a guest
can fail into an ``Invocation`` with a status: the host never raises because of a guest.
"""

from __future__ import annotations

import hashlib
import threading
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Union

import structlog
import wasmtime
import wasmtime.component as wc

from ..abi.codec import decode
from ..abi.guest_memory import GuestMemory, OversizedOutput
from ..abi.signatures import MEMORY_EXPORT
from ..abi.validation import WASM_PAGE, compile_checked, validate
from ..capabilities import link_all
from ..errors import ExecutionTimeout, GuestFault, LimitExceeded, Rejected, Uncatchable
from ..execution.context import ExecutionContext
from ..execution.limits import LimitsProfile
from .components import CircuitComponent, ComponentHost, is_component
from .engine import MAX_TABLE_ELEMENTS, EpochTicker, ModuleCache, deadline_ticks, make_engine
from .invocation import (
    Invocation,
    fuel_exhausted_invocation,
    host_error_invocation,
    memory_limit_invocation,
    memory_refused_invocation,
    outcome_of,
    timeout_invocation,
    trap_reason,
)

log = structlog.get_logger("circuit.runtime")

MAX_MODULE_BYTES = 32 * 1024 * 1024
DEFAULT_MEMORY_CAP = LimitsProfile().memory_bytes


Loaded = Union["CircuitModule", CircuitComponent]  # what ``Runtime.load`` returns


@dataclass(frozen=True)
class CircuitModule:
    """A validated, compiled, pre-linked module, ready for fresh instances."""

    sha256: str
    module: wasmtime.Module
    instance_pre: wasmtime.InstancePre
    has_initialize: bool
    from_disk_cache: bool


class Runtime:
    """One engine, one linker, one epoch ticker, shared by every execution in the process.

    ``testing=True`` makes a test runtime (``circuit test``): its linker also has the
    ``testing`` interface and it loads only test modules (world ``circuit-test``). A runtime
    without it never links ``testing``, so production rejects modules that import it.
    """

    def __init__(
        self, cache_dir: Path | None = None, max_module_bytes: int = MAX_MODULE_BYTES, testing: bool = False
    ) -> None:
        self.engine = make_engine()
        self.linker = wasmtime.Linker(self.engine)
        link_all(self.linker)
        self.testing = testing
        # Called with (store, instance) after every store this runtime ran, triggers included, trap or
        # not: how coverage reads an instrumented module's counters. Never set in production.
        self.store_observer: Callable[[wasmtime.Store, wasmtime.Instance], None] | None = None
        if testing:
            from ..capabilities.testing import link as link_testing

            link_testing(self.linker)
        self.cache = ModuleCache(cache_dir)
        self.max_module_bytes = max_module_bytes
        self._loaded: dict[str, CircuitModule] = {}
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
                self._components = ComponentHost(self.engine, self.cache, self.testing)
            return self._components

    def load_module(self, wasm: bytes, memory_cap: int = DEFAULT_MEMORY_CAP) -> CircuitModule:
        """``load`` for a core module only (a component is rejected by the core validator)."""
        if self._closed:
            raise RuntimeError("runtime is closed")
        sha256 = hashlib.sha256(wasm).hexdigest()
        with self._lock:
            cached = self._loaded.get(sha256)
        if cached is not None:
            validate(cached.module, memory_cap, self.testing)  # cheap; the cap may differ between callers
            return cached
        module = self.cache.load(self.engine, sha256)
        from_disk = module is not None
        if module is None:
            module = compile_checked(self.engine, wasm, self.max_module_bytes)
        validate(module, memory_cap, self.testing)
        if not from_disk:
            self.cache.store(sha256, module)
        loaded = CircuitModule(
            sha256=sha256,
            module=module,
            instance_pre=self.linker.instantiate_pre(module),
            has_initialize=any(e.name == "_initialize" for e in module.exports),
            from_disk_cache=from_disk,
        )
        with self._lock:
            self._loaded.setdefault(sha256, loaded)
        log.debug("module loaded", sha256=sha256, from_disk_cache=from_disk)
        return loaded

    # -- executing -------------------------------------------------------------------------

    def invoke(self, module: Loaded, event: bytes, context: ExecutionContext) -> Invocation:
        """Run ``handle(event)`` in a fresh store; never raises because of the guest."""
        if isinstance(module, CircuitComponent):
            return self.components.invoke(module, event, context, self._arm)
        return self.run_in_store(
            module,
            context,
            lambda exports, store: self._call_handle(event, context, store, exports),
            input_bytes=len(event),
        )

    def run_component(
        self,
        loaded: CircuitComponent,
        context: ExecutionContext,
        call: Callable[[wc.Instance, wasmtime.Store], Invocation],
        input_bytes: int = 0,
    ) -> Invocation:
        """``run_in_store`` for a component: ``call(instance, store)`` in a fresh, armed store."""
        return self.components.run(loaded, context, call, self._arm, input_bytes)

    def run_in_store(
        self,
        module: CircuitModule,
        context: ExecutionContext,
        call: Callable[[Any, wasmtime.Store], Invocation],
        input_bytes: int = 0,
    ) -> Invocation:
        """Instantiate ``module`` in a fresh, armed store and run ``call(exports, store)``.

        ``context.guest`` is set and ``_initialize`` has run when ``call`` starts. Every way the
        guest can fail becomes an ``Invocation``, as for ``invoke``. ``input_bytes`` is charged
        before the module is instantiated, so an oversized input never runs any guest code.
        """
        governor = context.governor
        limits = governor.limits
        store = wasmtime.Store(self.engine, data=context)
        context.store = store
        store.set_limits(
            memory_size=limits.memory_bytes, table_elements=MAX_TABLE_ELEMENTS, instances=1, tables=4, memories=2
        )
        instance: wasmtime.Instance | None = None
        try:
            self._arm(store, context)
            governor.charge("input_bytes", input_bytes)
            instance = module.instance_pre.instantiate(store)
            exports = instance.exports(store)
            context.guest = GuestMemory(store, exports[MEMORY_EXPORT], _func(exports, "cabi_realloc"))
            if module.has_initialize:
                _func(exports, "_initialize")(store)
            return call(exports, store)
        except Uncatchable as exc:  # a limit, the deadline or a fault, raised by the host
            return outcome_of(exc)
        except OversizedOutput as exc:
            return outcome_of(
                LimitExceeded("output_bytes", governor.used("output_bytes"), exc.length, limits.output_bytes)
            )
        except wasmtime.Trap as trap:
            return self._from_trap(trap, context)
        except wasmtime.WasmtimeError as exc:
            message = _first_line(str(exc))
            if "memory" in message and "limit" in message:
                return memory_refused_invocation(limits.memory_bytes, message)
            return Invocation("trap", error_kind="trap", error_message=message)
        except Exception as exc:  # a host bug must still not take the process down
            log.exception("host error during execution")
            return host_error_invocation(exc)
        finally:
            if self.store_observer is not None and instance is not None:
                self.store_observer(store, instance)
            context.measure()
            # The store holds the context as its data; drop the back references so the store
            # (and its address-space reservation) is freed now, not at interpreter exit.
            context.guest = None
            context.store = None

    @staticmethod
    def _arm(store: wasmtime.Store, context: ExecutionContext) -> None:
        """Give the store what is left of the execution's fuel and wall-clock budget."""
        governor = context.governor
        fuel = governor.remaining("fuel")
        if fuel <= 0:
            raise LimitExceeded("fuel", governor.used("fuel"), 1, governor.limit("fuel"))
        time_left = governor.time_left_ms()
        if time_left <= 0:
            raise ExecutionTimeout(f"wall-clock deadline of {governor.limit('timeout_ms')} ms reached")
        store.set_fuel(fuel)
        context.fuel_granted = fuel
        store.set_epoch_deadline(deadline_ticks(time_left))

    def _call_handle(self, event: bytes, context: ExecutionContext, store: wasmtime.Store, exports: Any) -> Invocation:
        governor = context.governor
        handle, post = _func(exports, "handle"), _func(exports, "cabi_post_handle")
        assert context.guest is not None
        ptr, length = context.guest.allocate(event, "event buffer")
        retptr = handle(store, ptr, length)
        ok, payload = context.guest.read_result(retptr, "handle result", max_len=governor.remaining("output_bytes"))
        governor.charge("output_bytes", len(payload))
        if ok:
            output = decode(payload, "handle output")
        else:
            try:
                message = payload.decode("utf-8")
            except UnicodeDecodeError:
                raise GuestFault("handle err: message is not valid UTF-8") from None
        context.guest.call_back(post, retptr)
        if ok:
            return Invocation("ok", output=output)
        return Invocation("error", error_kind="guest_error", error_message=message)

    def _from_trap(self, trap: wasmtime.Trap, context: ExecutionContext) -> Invocation:
        code = trap.trap_code
        message = trap_reason(trap)
        governor = context.governor
        if code == wasmtime.TrapCode.OUT_OF_FUEL:
            return fuel_exhausted_invocation(governor.limit("fuel"))
        if code == wasmtime.TrapCode.INTERRUPT:
            return timeout_invocation(f"wall-clock deadline of {governor.limit('timeout_ms')} ms reached")
        cap = governor.limit("memory_bytes")
        if context.guest is not None and context.guest.size + WASM_PAGE > cap:
            # memory.grow was refused at the cap and the guest gave up.
            return memory_limit_invocation(cap, f"and the guest trapped: {message}")
        return Invocation("trap", error_kind="trap", error_message=message)


def _func(exports: Any, name: str) -> wasmtime.Func:
    """An export validation guaranteed to be a function (``Instance.exports`` is untyped)."""
    item = exports[name]
    if not isinstance(item, wasmtime.Func):
        raise GuestFault(f"export {name!r} is not a function")
    return item


def _first_line(text: str) -> str:
    text = text.strip()
    return text.splitlines()[0] if text else "unknown error"
