"""Per-execution state, attached to the wasmtime store as its data.

Nothing here is global: the runtime builds one ``ExecutionContext`` per execution and
the host functions find it through the store they are called on.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from .abi.guest_memory import GuestMemory
from .capabilities.http import CalloutSession
from .connectors.records import RecordsTransaction
from .execution_log import ExecutionLog
from .governor import Governor


@dataclass
class ExecutionContext:
    governor: Governor
    log: ExecutionLog
    records: RecordsTransaction
    http: CalloutSession
    guest: GuestMemory | None = None
    store: Any = None  # the wasmtime.Store, for fuel and memory probes

    def measure(self) -> None:
        """Record fuel and memory used so far (for ``limits.usage`` and the final report)."""
        if self.store is None:
            return
        limit = self.governor.limit("fuel")
        self.governor.record("fuel", limit - int(self.store.get_fuel()))
        if self.guest is not None:
            self.governor.record("memory_bytes", max(self.governor.used("memory_bytes"), self.guest.size))
