"""One sandbox session: a fresh store armed before any guest code runs, and one way to tell how it ended.

Core modules and components run through the same session: the store gets the memory cap and
table limits, the execution's remaining fuel and wall-clock deadline, and the input is charged
before instantiation (so a start function and an oversized input run under the limits too). The
execution's context is entered (``running``) for the whole call, so every host call finds it.

How the call ended is classified in one place, for both guest kinds. An uncatchable error a host
function raised is recorded on the context (``ExecutionContext.fail``) and wins over whatever
exception surfaced, because wasmtime-py may hand a host exception to another thread's call.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import TypeVar

import structlog
import wasmtime

from ..abi.guest_memory import OversizedOutput
from ..abi.validation import WASM_PAGE
from ..errors import CircuitError, ExecutionTimeout, LimitExceeded
from ..execution.context import ExecutionContext, running
from .engine import MAX_TABLE_ELEMENTS, deadline_ticks
from .invocation import (
    Invocation,
    fuel_exhausted_invocation,
    host_error_invocation,
    memory_limit_invocation,
    memory_refused_invocation,
    outcome_of,
    timeout_invocation,
)

log = structlog.get_logger("circuit.sandbox")

Instance = TypeVar("Instance")


@dataclass(frozen=True)
class StoreShape:
    """How many instances, tables and memories one store of a guest kind may create.

    wasmtime's memory limit applies to each memory, not to their sum, so ``capped_memories`` is
    how many memories share the memory cap: each may grow to the cap divided by it.
    """

    instances: int
    tables: int
    memories: int
    capped_memories: int = 1

    def memory_size(self, cap: int) -> int:
        """The limit of each memory: an equal share of ``cap``, in whole pages."""
        return cap // self.capped_memories // WASM_PAGE * WASM_PAGE


# One linear memory: the store's memory limit is per memory, so a circuit's one memory is the whole
# cap. An instrumented test module gets the coverage counters' memory besides (``extra_memories``).
CORE_MODULE_STORE = StoreShape(instances=1, tables=4, memories=1)
# A component is several core instances; it gets the memories its core modules define, at most 16,
# sharing the cap (``components.defined_memories``). A componentize-py circuit defines one.
COMPONENT_STORE = StoreShape(instances=64, tables=64, memories=16, capped_memories=16)


def arm(store: wasmtime.Store, context: ExecutionContext) -> None:
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


def run_session(
    engine: wasmtime.Engine,
    context: ExecutionContext,
    shape: StoreShape,
    instantiate: Callable[[wasmtime.Store], Instance],
    call: Callable[[Instance, wasmtime.Store], Invocation],
    input_bytes: int = 0,
    observer: Callable[[wasmtime.Store, Instance], None] | None = None,
) -> Invocation:
    """``call(instantiate(store), store)`` in a fresh, armed store; never raises because of the guest.

    ``observer`` (test runtimes only: coverage) sees the store and instance afterwards, trap or not.
    """
    governor = context.governor
    store = wasmtime.Store(engine)
    store.set_limits(
        memory_size=shape.memory_size(governor.limits.memory_bytes),
        table_elements=MAX_TABLE_ELEMENTS,
        instances=shape.instances,
        tables=shape.tables,
        memories=shape.memories,
    )
    context.store = store
    context.failure = None
    instance: Instance | None = None
    try:
        with running(context):
            arm(store, context)
            governor.charge("input_bytes", input_bytes)
            instance = instantiate(store)
            outcome = call(instance, store)
        return outcome if context.failure is None else failure_outcome(context.failure, context)
    except Exception as exc:  # every way a guest call can end abnormally becomes an Invocation
        return classify(exc, context)
    finally:
        if observer is not None and instance is not None:
            observer(store, instance)
        context.measure()
        # Drop the back references so the store (and its address-space reservation) is freed now.
        context.guest = None
        context.store = None


def failure_outcome(error: BaseException, context: ExecutionContext) -> Invocation:
    """The outcome a failure recorded by a host call gives the call: a limit, the deadline, a fault,
    a trap of the guest's own code the host called back into (``cabi_realloc``), or a host bug."""
    if isinstance(error, Exception) and not isinstance(error, CircuitError):
        return _classify_exception(error, context)
    if isinstance(error, CircuitError):
        return outcome_of(error)
    log.error("host call interrupted", error=f"{type(error).__name__}: {error}")
    return host_error_invocation(RuntimeError(f"{type(error).__name__}: {error}"))


def classify(exc: Exception, context: ExecutionContext) -> Invocation:
    """How a guest call that raised ended, for core modules and components alike."""
    if context.failure is not None:
        return failure_outcome(context.failure, context)
    return _classify_exception(exc, context)


def _classify_exception(exc: Exception, context: ExecutionContext) -> Invocation:
    governor = context.governor
    if isinstance(exc, CircuitError):  # raised by the host outside a host call (arming, input, output)
        return outcome_of(exc)
    if isinstance(exc, OversizedOutput):
        return outcome_of(
            LimitExceeded("output_bytes", governor.used("output_bytes"), exc.length, governor.limits.output_bytes)
        )
    if isinstance(exc, wasmtime.Trap):
        return classify_trap(exc.trap_code, trap_reason(exc), context)
    if isinstance(exc, wasmtime.WasmtimeError):  # instantiation failures; component calls report traps so
        return classify_trap(None, error_cause(str(exc)), context)
    log.error("host error during execution", error=f"{type(exc).__name__}: {exc}", exc_info=exc)
    return host_error_invocation(exc)


def classify_trap(code: wasmtime.TrapCode | None, message: str, context: ExecutionContext) -> Invocation:
    governor = context.governor
    lowered = message.lower()
    if code == wasmtime.TrapCode.OUT_OF_FUEL or (
        code is None and ("all fuel consumed" in lowered or "out of fuel" in lowered)
    ):
        return fuel_exhausted_invocation(governor.limit("fuel"))
    if code == wasmtime.TrapCode.INTERRUPT or (code is None and "interrupt" in lowered):
        return timeout_invocation(f"wall-clock deadline of {governor.limit('timeout_ms')} ms reached")
    cap = governor.limit("memory_bytes")
    if code is None and "memory" in lowered and ("limit" in lowered or "minimum size" in lowered):
        return memory_refused_invocation(cap, message)  # wasmtime refused memory at the store's limit
    if context.guest is not None and context.guest.size + WASM_PAGE > cap:
        # memory.grow was refused at the cap and the guest gave up.
        return memory_limit_invocation(cap, f"and the guest trapped: {message}")
    return Invocation("trap", error_kind="trap", error_message=message)


def trap_reason(trap: wasmtime.Trap) -> str:
    """The cause of a trap without the backtrace, e.g. ``wasm trap: call stack exhausted (stack_overflow)``."""
    reason = error_cause(trap.message)
    code = trap.trap_code
    return f"{reason} ({code.name.lower()})" if code is not None else reason


def error_cause(text: str) -> str:
    """The cause of a wasmtime error or trap without its backtrace."""
    _, _, cause = text.partition("Caused by:")
    lines = [line.strip() for line in (cause or text).strip().splitlines() if line.strip()]
    lines = [line.split(": ", 1)[1] if line.split(":", 1)[0].isdigit() else line for line in lines]
    return ": ".join(lines) or "unknown error"
