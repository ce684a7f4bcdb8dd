"""Governor introspection: how much of each resource this execution has used."""

from __future__ import annotations

from . import _bindings
from .msgpack import unpackb


def usage() -> dict[str, tuple[int, int]]:
    """``{resource: (used, limit)}`` for every governor resource."""
    return {name: (pair[0], pair[1]) for name, pair in unpackb(_bindings.interface("limits").usage()).items()}


def remaining(resource: str) -> int:
    used, limit = usage()[resource]
    return max(0, limit - used)
