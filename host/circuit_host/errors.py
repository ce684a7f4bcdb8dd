"""The error hierarchy of the host.

Two families matter to a guest. *Catchable* errors (``QueryError``, ``DmlError``,
``CalloutError``) are answered as the ``err`` case of an ABI result, the way Apex
raises a catchable exception. *Uncatchable* ones (``LimitExceeded``, ``GuestFault``)
are raised inside a host function, which unwinds the guest: it can never observe or
swallow them, and the execution ends with its writes rolled back.
"""

from __future__ import annotations


class CircuitError(Exception):
    """Base of every error the host raises on purpose."""

    kind = "error"


class Rejected(CircuitError):
    """A module (or its configuration) failed load-time validation; it never ran."""

    kind = "rejected"


class CatchableError(CircuitError):
    """An error the guest receives as ``err(message)`` and may handle."""


class QueryError(CatchableError):
    """Bad SOQL: syntax, unknown object or field, bad bind (Apex's QueryException)."""

    kind = "query_error"


class DmlError(CatchableError):
    """A DML statement failed validation; nothing of the statement was written."""

    kind = "dml_error"


class CalloutError(CatchableError):
    """An HTTP callout was refused or failed (Apex's CalloutException)."""

    kind = "callout_error"


class Uncatchable(CircuitError):
    """Raised inside a host function to unwind the guest; ends the execution."""


class LimitExceeded(Uncatchable):
    """A governor limit would be exceeded by the call being charged."""

    kind = "limit_exceeded"

    def __init__(self, resource: str, used: int, requested: int, limit: int) -> None:
        self.resource = resource
        self.used = used
        self.requested = requested
        self.limit = limit
        super().__init__(f"limit exceeded: {resource} (used {used}, requested {requested}, limit {limit})")


class GuestFault(Uncatchable):
    """The guest broke the ABI contract: bad pointer, bad enum, malformed msgpack, bad UTF-8."""

    kind = "guest_fault"


class ExecutionTimeout(Uncatchable):
    """The wall-clock deadline passed."""

    kind = "timeout"
