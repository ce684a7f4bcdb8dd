"""Queueable circuits (ABI 1.1.0): ``jobs.enqueue("enrich", {"ids": ids})`` asks for a job that runs
circuit ``enrich`` later, in its own execution, whose ``@job`` handler receives the payload.

The job is enqueued only if this execution commits; the id returned is the job's idempotency key
(``exec:<execution id>:<n>``). A circuit whose code uses ``jobs`` is built against the 1.1.0 world;
one that does not keeps the 1.0.0 world it always had.
"""

from __future__ import annotations

from typing import Any

from . import _bindings
from .errors import JobError
from .msgpack import packb


def enqueue(circuit: str, payload: Any = None) -> str:
    """Ask for a job of circuit ``circuit`` with ``payload`` (any msgpack-able value of nil, bool,
    int, float, str, lists and str-keyed dicts); return the job's id.

    Raises ``JobError`` for an unknown circuit, a payload that is not JSON-like or too large, or
    the job chain depth limit. Over the ``async_jobs`` limit the execution ends.
    """
    if not _bindings.has_interface("jobs"):
        raise JobError(
            "jobs.enqueue needs ABI 1.1.0, and this circuit was built against 1.0.0: "
            "import jobs from circuit_sdk at module level (from circuit_sdk import jobs) so the build sees it"
        )
    ok, value = _bindings.unwrap(_bindings.interface("jobs").enqueue, circuit, packb(payload))
    if not ok:
        raise JobError(value)
    return str(value)
