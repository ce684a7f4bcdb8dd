"""What one guest call produced, as the host reports it: never an exception because of a guest."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from ..errors import CircuitError, ExecutionTimeout, GuestFault, LimitExceeded


@dataclass(frozen=True)
class Invocation:
    """What one ``handle`` call produced."""

    status: str  # ok | error | limit_exceeded | timeout | trap
    output: Any = None
    error_kind: str | None = None
    error_message: str | None = None
    resource: str | None = None  # the limit that was hit, for limit_exceeded


def timeout_invocation(message: str) -> Invocation:
    return Invocation("timeout", error_kind=ExecutionTimeout.kind, error_message=message)


def memory_limit_invocation(cap: int, detail: str) -> Invocation:
    """The guest reached the memory cap (a refused ``memory.grow``) and failed because of it."""
    return Invocation(
        "limit_exceeded",
        error_kind="limit_exceeded",
        error_message=f"limit exceeded: memory_bytes (guest memory reached the cap of {cap} bytes {detail})",
        resource="memory_bytes",
    )


def outcome_of(exc: CircuitError) -> Invocation:
    """The status a host-raised error gives the call: a limit, the deadline, a fault (a trap), else an error."""
    if isinstance(exc, LimitExceeded):
        return Invocation("limit_exceeded", error_kind=exc.kind, error_message=str(exc), resource=exc.resource)
    if isinstance(exc, ExecutionTimeout):
        return Invocation("timeout", error_kind=exc.kind, error_message=str(exc))
    if isinstance(exc, GuestFault):
        return Invocation("trap", error_kind=exc.kind, error_message=str(exc))
    return Invocation("error", error_kind=exc.kind, error_message=str(exc))


def fuel_exhausted_invocation(fuel: int) -> Invocation:
    """The store ran out of the fuel the governor granted."""
    return outcome_of(LimitExceeded("fuel", fuel, 1, fuel))


def memory_refused_invocation(cap: int, message: str) -> Invocation:
    """wasmtime refused memory at the store's limit (at instantiation or on growth)."""
    err = LimitExceeded("memory_bytes", 0, 0, cap)
    return Invocation("limit_exceeded", error_kind=err.kind, error_message=message, resource=err.resource)


def host_error_invocation(exc: Exception) -> Invocation:
    """A bug in the host, reported as this call's error instead of taking the process down."""
    return Invocation("error", error_kind="host_error", error_message=f"{type(exc).__name__}: {exc}")
