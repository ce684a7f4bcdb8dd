"""Which circuits run on which record changes, per tenant, in a defined order."""

from __future__ import annotations

import threading
from collections.abc import Mapping
from dataclasses import dataclass
from typing import get_args

from ..errors import Rejected
from ..execution.callout_policy import HostPattern, NamedCredential
from ..execution.events import Operation
from ..sandbox.loaded import Loaded

OPERATIONS: tuple[str, ...] = get_args(Operation)


@dataclass(frozen=True)
class TriggerBinding:
    """One circuit handling one (object, operation). Lower ``order`` runs first; ties by name."""

    name: str
    object_name: str
    operation: str
    module: Loaded
    order: int = 0
    allowed_hosts: tuple[HostPattern, ...] | None = None  # None: the execution's allowlist applies
    credentials: Mapping[str, NamedCredential] | None = None  # the named credentials its bundle declares

    def __post_init__(self) -> None:
        if self.operation not in OPERATIONS:
            raise Rejected(f"unknown trigger operation {self.operation!r}; expected one of {', '.join(OPERATIONS)}")


class TriggerRegistry:
    """Maps (tenant, object, operation) to trigger bindings. Object names are case-insensitive."""

    def __init__(self) -> None:
        self._bindings: dict[tuple[str, str, str], tuple[TriggerBinding, ...]] = {}
        self._lock = threading.Lock()

    def register(self, tenant: str, binding: TriggerBinding) -> None:
        key = (tenant, binding.object_name.lower(), binding.operation)
        with self._lock:
            current = [b for b in self._bindings.get(key, ()) if b.name != binding.name]
            current.append(binding)
            self._bindings[key] = tuple(sorted(current, key=lambda b: (b.order, b.name)))

    def unregister(self, tenant: str, name: str) -> None:
        with self._lock:
            for key, bindings in list(self._bindings.items()):
                if key[0] == tenant:
                    self._bindings[key] = tuple(b for b in bindings if b.name != name)

    def bindings(self, tenant: str, object_name: str, operation: str) -> tuple[TriggerBinding, ...]:
        return self._bindings.get((tenant, object_name.lower(), operation), ())

    def handles(self, tenant: str, object_name: str) -> bool:
        """True if any trigger is registered for ``object_name``: DML on others skips the firing path."""
        lowered = object_name.lower()
        return any(key[0] == tenant and key[1] == lowered and b for key, b in self._bindings.items())
