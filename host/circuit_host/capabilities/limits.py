"""``limits.usage``: the guest's view of its own budget, as ``{resource: [used, limit]}``.

A module sees the resources of its own ABI world (``guest_resources``): a 1.0.0 module gets exactly
the v1 map, without ``async_jobs``, which came with 1.1.0.
"""

from __future__ import annotations

from ..abi.codec import encode
from ..execution.context import ExecutionContext
from ..execution.limits import guest_resources


def usage(context: ExecutionContext) -> bytes:
    context.measure()
    usage = context.governor.usage()
    return encode({name: [usage[name].used, usage[name].limit] for name in guest_resources(context.abi_version)})
