"""Per-execution state, and which execution the running code belongs to.

Nothing here is global but the ``ContextVar`` that says which execution a host call is for:
the sandbox enters it (``running``) around every guest call, and every binding (core modules,
components, the native test binding) finds the context through ``current_context()``. A child
context (a trigger fired by DML) is entered the same way, nested inside its parent's host call.
"""

from __future__ import annotations

from contextvars import ContextVar, Token
from dataclasses import dataclass, field
from typing import Any

from ..abi.guest_memory import GuestMemory
from ..abi.signatures import ABI_VERSION
from ..connectors.records import RecordsTransaction
from ..errors import GuestFault
from .callout_policy import CalloutSession
from .execution_log import ExecutionLog
from .governor import Governor
from .job_intents import JobIntents


@dataclass
class ExecutionContext:
    governor: Governor
    log: ExecutionLog
    records: RecordsTransaction  # with triggers registered, a firing wrapper (``triggers/firing.py``)
    http: CalloutSession
    guest: GuestMemory | None = None
    store: Any = None  # the wasmtime.Store, for fuel and memory probes
    fuel_granted: int = 0  # fuel in the store when last settled
    depth: int = 0  # 0 for the execution itself, n for a trigger fired n levels deep
    # The first uncatchable error a host function raised for this guest call (a limit, the
    # deadline, a fault, or a host bug). The call's outcome is classified from it, never from the
    # exception that surfaced: wasmtime-py hands exceptions back through a process-wide variable.
    failure: BaseException | None = None
    jobs: JobIntents = field(default_factory=lambda: JobIntents(""))  # enqueued when the execution commits
    abi_version: str = ABI_VERSION  # the world of the module running (set by the sandbox): what limits.usage shows

    def child(self) -> ExecutionContext:
        """The context of a trigger fired by this one's DML: same budget, log, transaction and job intents."""
        return ExecutionContext(
            governor=self.governor,
            log=self.log,
            records=self.records,
            http=self.http,
            depth=self.depth + 1,
            jobs=self.jobs,
        )

    def fail(self, error: BaseException) -> BaseException:
        """Record ``error`` as what ended this guest call (the first one wins) and return it."""
        if self.failure is None:
            self.failure = error
        return error

    def settle_fuel(self) -> None:
        """Move the fuel this store burnt since the last settle into the governor.

        Every store of an execution (the circuit's and its triggers') draws on one budget.
        """
        if self.store is None:
            return
        left = int(self.store.get_fuel())
        self.governor.add_measured("fuel", self.fuel_granted - left)
        self.fuel_granted = left

    def cap_fuel(self) -> None:
        """After a nested store ran, leave this store no more fuel than the budget has left."""
        if self.store is None:
            return
        allowed = min(int(self.store.get_fuel()), self.governor.remaining("fuel"))
        self.store.set_fuel(allowed)
        self.fuel_granted = allowed

    def measure(self) -> None:
        """Record fuel and memory used so far (for ``limits.usage`` and the final report)."""
        self.settle_fuel()
        if self.guest is not None:
            self.governor.record("memory_bytes", max(self.governor.used("memory_bytes"), self.guest.size))


_current: ContextVar[ExecutionContext | None] = ContextVar("circuit_execution", default=None)


class running:  # used as a function: ``with running(context):``
    """Make ``context`` the one host calls on this thread are for, until the block ends.

    A class rather than a generator context manager: it is entered around every guest call.
    """

    __slots__ = ("_context", "_token")
    _token: Token[ExecutionContext | None]

    def __init__(self, context: ExecutionContext) -> None:
        self._context = context

    def __enter__(self) -> ExecutionContext:
        self._token = _current.set(self._context)
        return self._context

    def __exit__(self, *exc: object) -> None:
        _current.reset(self._token)


def current_context() -> ExecutionContext:
    """The execution the running host call is for; a fault outside any execution."""
    context = _current.get()
    if context is None:
        raise GuestFault("host call outside an execution")
    return context
