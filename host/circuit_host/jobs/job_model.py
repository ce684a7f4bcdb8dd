"""The plain data of the job queue: what is enqueued, what is stored, how a failure is retried.

Both backends (``embedded_queue``, ``fleet_queue``) hand out these types and nothing of their own,
so the server, the CLI and the conformance suite never know which one they talk to.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from enum import StrEnum
from typing import Any, Literal

from ..errors import CircuitError, Rejected

MAX_PAYLOAD_BYTES = 1_000_000
KIND_PATTERN = re.compile(r"^[a-z][a-z0-9_.-]{0,63}$")
MAX_LABEL = 200  # queueing locks, locks, keys, circuit names


class JobState(StrEnum):
    """Where a job is. A failed attempt that will be retried is ``todo`` again, with ``last_error`` set."""

    TODO = "todo"
    DOING = "doing"
    SUCCEEDED = "succeeded"
    CANCELLED = "cancelled"
    DEAD = "dead"  # out of attempts (or retried by hand: back to todo)


FINISHED = frozenset({JobState.SUCCEEDED, JobState.CANCELLED, JobState.DEAD})


class LeaseLost(CircuitError):
    """This run no longer owns its job (its lease expired and another worker took it): commit nothing."""

    kind = "lease_lost"


class JobCancelled(CircuitError):
    """Raised by a handler that saw ``JobRun.cancel_requested()``: the job ends ``cancelled``, not retried."""

    kind = "job_cancelled"


@dataclass(frozen=True)
class RetryPolicy:
    """Attempts and exponential backoff: the n-th retry waits ``min(backoff * 2**(n-1), max_backoff)``."""

    max_attempts: int = 5
    backoff_s: float = 2.0
    max_backoff_s: float = 3600.0

    def __post_init__(self) -> None:
        if not 1 <= self.max_attempts <= 100:
            raise Rejected(f"max_attempts must be between 1 and 100, not {self.max_attempts}")
        if self.backoff_s < 0 or self.max_backoff_s < 0:
            raise Rejected("backoff must not be negative")

    def delay_after(self, attempts: int) -> timedelta:
        """The wait before the next attempt, after ``attempts`` (>= 1) failed ones."""
        return timedelta(seconds=min(self.backoff_s * 2 ** max(attempts - 1, 0), self.max_backoff_s))

    def as_json(self) -> dict[str, Any]:
        return {"max_attempts": self.max_attempts, "backoff_s": self.backoff_s, "max_backoff_s": self.max_backoff_s}

    @classmethod
    def from_json(cls, data: Any) -> RetryPolicy:
        return cls(int(data["max_attempts"]), float(data["backoff_s"]), float(data["max_backoff_s"]))


@dataclass(frozen=True)
class JobRequest:
    """A job to enqueue.

    ``queueing_lock``: at most one *waiting* (``todo``) job holds it; enqueuing another while one
    waits returns ``None`` (coalescing: the waiting job will see the newer data anyway).
    ``lock``: jobs sharing it never run at the same time, and run in enqueue order.
    ``key``: an idempotency key, unique per tenant for ever; enqueuing it again returns the job
    that has it (a relay that re-sends after a crash enqueues once).
    """

    kind: str
    payload: Any = None
    tenant_id: str = ""
    circuit: str | None = None
    env: str | None = None
    run_at: datetime | None = None  # timezone-aware; None: now
    priority: int = 0  # higher runs first
    retry: RetryPolicy = field(default_factory=RetryPolicy)
    queueing_lock: str | None = None
    lock: str | None = None
    key: str | None = None

    def __post_init__(self) -> None:
        if not KIND_PATTERN.match(self.kind):
            raise Rejected(f"job kind {self.kind!r} must be lower case letters, digits, '_', '.' or '-'")
        if self.run_at is not None and self.run_at.utcoffset() is None:
            raise Rejected("run_at must be timezone-aware")
        for name in ("queueing_lock", "lock", "key", "circuit", "env"):
            value = getattr(self, name)
            if value is not None and not 0 < len(value) <= MAX_LABEL:
                raise Rejected(f"{name} must be 1 to {MAX_LABEL} characters")
        if len(self.tenant_id) > 64:
            raise Rejected("tenant_id is at most 64 characters")
        if not -1000 <= self.priority <= 1000:
            raise Rejected("priority must be between -1000 and 1000")
        if len(self.payload_json()) > MAX_PAYLOAD_BYTES:
            raise Rejected(f"job payload is larger than {MAX_PAYLOAD_BYTES} bytes")

    def payload_json(self) -> str:
        try:
            return json.dumps(self.payload, separators=(",", ":"), allow_nan=False)
        except (TypeError, ValueError) as exc:
            raise Rejected(f"job payload is not JSON: {exc}") from None


@dataclass(frozen=True)
class Job:
    """A stored job, as both backends report it."""

    id: int
    kind: str
    tenant_id: str
    circuit: str | None
    env: str | None
    payload: Any
    state: JobState
    attempts: int  # attempts finished so far (a running attempt is not counted yet)
    max_attempts: int
    run_at: datetime | None  # not before; for a todo job after a failure, when it is retried
    priority: int
    queueing_lock: str | None
    lock: str | None
    key: str | None
    created_at: datetime
    last_error: str | None
    execution_id: str | None  # the execution the latest attempt ran (``JobRun.link_execution``)
    cancel_requested: bool


@dataclass(frozen=True)
class JobFilter:
    """What ``JobQueue.list_jobs`` returns: newest first, ``before_id`` pages back."""

    tenant_id: str | None = None
    kind: str | None = None
    state: JobState | None = None
    circuit: str | None = None
    env: str | None = None
    before_id: int | None = None
    limit: int = 100


MissedTicks = Literal["once", "skip"]


@dataclass(frozen=True)
class PeriodicSchedule:
    """A cron schedule: each tick enqueues one job of ``kind`` across the whole fleet.

    ``id`` names the schedule (ticks are deduplicated by ``(id, tick time)``). After downtime the
    missed ticks run ``once`` (the latest of them, one job) or are skipped (``skip``).
    """

    id: str
    cron: str
    kind: str
    timezone: str = "UTC"
    payload: Any = None
    tenant_id: str = ""
    circuit: str | None = None
    env: str | None = None
    missed: MissedTicks = "once"
    retry: RetryPolicy = field(default_factory=RetryPolicy)

    def __post_init__(self) -> None:
        if not 0 < len(self.id) <= MAX_LABEL:
            raise Rejected(f"schedule id must be 1 to {MAX_LABEL} characters")
        if self.missed not in ("once", "skip"):
            raise Rejected("missed must be 'once' or 'skip'")

    def request(self, tick: datetime) -> JobRequest:
        """The job of one tick; its payload carries the tick time so a handler knows which run it is."""
        return JobRequest(
            kind=self.kind,
            payload={"tick": tick.isoformat(), "payload": self.payload},
            tenant_id=self.tenant_id,
            circuit=self.circuit,
            env=self.env,
            retry=self.retry,
            key=f"tick:{self.id}:{tick.isoformat()}",
        )
