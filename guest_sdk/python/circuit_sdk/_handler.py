"""What the component's ``handle`` export does, shared by the production and test entries."""

from __future__ import annotations

from componentize_py_types import Err

from ._describe import describe
from .async_events import dispatch_async, is_async
from .msgpack import packb, unpackb
from .trigger import dispatch


def handle_event(event: bytes) -> bytes:
    """Decode the event, run the matching handlers (``@trigger``, ``@job``, ``@schedule``, ``@batch_*``) and
    encode their output; an exception is ``err``."""
    try:
        decoded = unpackb(event)
        return packb(dispatch_async(decoded) if is_async(decoded) else dispatch(decoded))
    except Exception as exc:
        raise Err(describe(exc)) from None
