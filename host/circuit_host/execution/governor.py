"""The governor: the single place that charges an execution's resources.

Capabilities call ``charge`` *before* forwarding a request to a connector; the call that
would go over a limit raises ``LimitExceeded``, which unwinds the guest (it cannot catch
it) and rolls back the execution. Fuel, memory and wall time are measured by the
runtime and recorded here so ``usage()`` reports every resource in one shape.
"""

from __future__ import annotations

import time
from dataclasses import dataclass

from ..errors import LimitExceeded
from .limits import RESOURCES, LimitsProfile


@dataclass(frozen=True)
class Usage:
    used: int
    limit: int


class Governor:
    """Counters of one execution against its ``LimitsProfile``."""

    def __init__(self, limits: LimitsProfile) -> None:
        self.limits = limits
        self._used = dict.fromkeys(RESOURCES, 0)
        self._started = time.monotonic()
        self._wall_time_final = False

    def limit(self, resource: str) -> int:
        return int(getattr(self.limits, resource))

    def used(self, resource: str) -> int:
        return self._used[resource]

    def remaining(self, resource: str) -> int:
        return max(0, self.limit(resource) - self._used[resource])

    def charge(self, resource: str, amount: int = 1) -> None:
        """Count ``amount`` of ``resource``, or raise ``LimitExceeded`` without counting it."""
        used, limit = self._used[resource], self.limit(resource)
        if used + amount > limit:
            raise LimitExceeded(resource, used, amount, limit)
        self._used[resource] = used + amount

    def add_measured(self, resource: str, amount: int) -> None:
        """Add usage measured after the fact (fuel burnt by a store); wasmtime enforces the cap."""
        self._used[resource] += amount

    def record(self, resource: str, value: int) -> None:
        """Set a measured resource (fuel, memory, wall time) to its observed value."""
        self._used[resource] = value
        if resource == "timeout_ms":
            self._wall_time_final = True

    def elapsed_ms(self) -> int:
        return int((time.monotonic() - self._started) * 1000)

    def time_left_ms(self) -> int:
        """Wall-clock budget left before the execution's deadline."""
        return max(0, self.limit("timeout_ms") - self.elapsed_ms())

    def usage(self) -> dict[str, Usage]:
        used = dict(self._used)
        if not self._wall_time_final:
            used["timeout_ms"] = self.elapsed_ms()
        return {name: Usage(used[name], self.limit(name)) for name in RESOURCES}
