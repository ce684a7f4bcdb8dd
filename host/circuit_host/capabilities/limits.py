"""``limits.usage``: the guest's view of its own budget, as ``{resource: [used, limit]}``."""

from __future__ import annotations

from typing import TYPE_CHECKING

import wasmtime

from ..abi.codec import encode
from ..abi.lowering import define_import
from ..abi.signatures import LIMITS_USAGE

if TYPE_CHECKING:
    from ..execution.context import ExecutionContext


def usage(context: ExecutionContext) -> bytes:
    context.measure()
    return encode({name: [u.used, u.limit] for name, u in context.governor.usage().items()})


def link(linker: wasmtime.Linker) -> None:
    define_import(linker, LIMITS_USAGE, usage)
