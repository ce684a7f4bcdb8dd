"""Per-execution state, attached to the wasmtime store as its data.

Nothing here is global: the runtime builds one ``ExecutionContext`` per execution and
the host functions find it through the store they are called on.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from ..abi.guest_memory import GuestMemory
from ..connectors.records import RecordsTransaction
from .callout_policy import CalloutSession
from .execution_log import ExecutionLog
from .governor import Governor

if TYPE_CHECKING:
    from ..triggers.firing import TriggerFiring


@dataclass
class ExecutionContext:
    governor: Governor
    log: ExecutionLog
    records: RecordsTransaction
    http: CalloutSession
    guest: GuestMemory | None = None
    store: Any = None  # the wasmtime.Store, for fuel and memory probes
    fuel_granted: int = 0  # fuel in the store when last settled
    depth: int = 0  # 0 for the execution itself, n for a trigger fired n levels deep
    firing: TriggerFiring | None = None  # runs DML through registered triggers, if any

    def child(self) -> ExecutionContext:
        """The context of a trigger fired by this one's DML: same budget, log and transaction."""
        return ExecutionContext(
            governor=self.governor,
            log=self.log,
            records=self.records,
            http=self.http,
            depth=self.depth + 1,
            firing=self.firing,
        )

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
