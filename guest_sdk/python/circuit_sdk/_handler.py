"""What the component's ``handle`` export does, shared by the production and test entries."""

from __future__ import annotations

from componentize_py_types import Err

from ._describe import describe
from .msgpack import packb, unpackb
from .trigger import dispatch


def handle_event(event: bytes) -> bytes:
    """Decode the event, run the matching handlers, encode their output; an exception is ``err``."""
    try:
        return packb(dispatch(unpackb(event)))
    except Exception as exc:
        raise Err(describe(exc)) from None
