"""``limits.usage``: the guest's view of its own budget, as ``{resource: [used, limit]}``."""

from __future__ import annotations

from ..abi.codec import encode
from ..execution.context import ExecutionContext


def usage(context: ExecutionContext) -> bytes:
    context.measure()
    return encode({name: [u.used, u.limit] for name, u in context.governor.usage().items()})
