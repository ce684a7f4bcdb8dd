"""What ``Runtime.load`` hands out: a compiled, validated guest ready for fresh instances.

Plain data, no behaviour: trigger bindings, bundles and the server hold these without
importing the runtime.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Union

import wasmtime
import wasmtime.component as wc

from ..abi.component_binding import Plan
from ..abi.core_exports import ExportPositions
from ..abi.signatures import ABI_VERSION


@dataclass(frozen=True)
class CircuitModule:
    """A validated, compiled, pre-linked core module (a Zig or WAT circuit)."""

    sha256: str
    module: wasmtime.Module
    instance_pre: wasmtime.InstancePre
    exports: ExportPositions  # resolved once, so a fresh instance never wraps its whole export list
    has_initialize: bool
    from_disk_cache: bool
    extra_memories: int = 0  # memories the host added (coverage counters) besides the circuit's one
    abi_version: str = ABI_VERSION  # the world its imports target (``abi_version_of``)


@dataclass(frozen=True)
class CircuitComponent:
    """A compiled Python-guest component."""

    sha256: str
    component: wc.Component
    from_disk_cache: bool
    plan: Plan  # how it is called and linked, decided once from its types
    abi_version: str = ABI_VERSION  # the world its imports target (``abi_version_of``)


Loaded = Union[CircuitModule, CircuitComponent]  # noqa: UP007  # a runtime alias, usable in isinstance-free hints
