"""The jobs an execution asks for (``jobs.enqueue``), held until it commits.

An execution that rolls back enqueues nothing: the capability only records an intent here; just
before the records transaction commits, the execution's ``JobSink`` writes the intents into it (the
job outbox, when the records are CircuitDB's), and after the commit it is handed them to enqueue.
Each intent carries an idempotency key, ``exec:<execution id>:<n>``, which is also the id the guest
gets back: handing the same intents over twice, or relaying them from the outbox after a crash,
makes one job each.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

from ..connectors.records import RecordsTransaction
from ..errors import CatchableError

DEFAULT_MAX_CHAIN_DEPTH = 5
MAX_JOB_PAYLOAD_BYTES = 1_000_000  # as the queue's own cap (jobs/job_model.py)


class JobError(CatchableError):
    """An enqueue the guest can handle: an unknown circuit, a payload that cannot travel, a chain too deep."""

    kind = "job_error"


@dataclass(frozen=True)
class JobIntent:
    circuit: str
    payload: Any  # JSON-like: what the job's event carries as ``payload``
    key: str  # the idempotency key, and the id the guest was given


class JobSink(Protocol):
    """Where a committed execution's intents go: the server's job queue, for one tenant environment."""

    @property
    def chain_depth(self) -> int:
        """How many jobs deep the execution is: 0 when no job runs it, n for the n-th job of a chain."""
        ...

    @property
    def max_chain_depth(self) -> int: ...

    def known_circuit(self, name: str) -> bool:
        """Whether a job may run circuit ``name`` (it is active in the environment)."""
        ...

    def stage(self, transaction: RecordsTransaction, intents: Sequence[JobIntent]) -> None:
        """Just before commit: write the intents into the records transaction if it can hold them
        (the job outbox), so that they survive a process that dies between the commit and the enqueue."""
        ...

    def enqueue_committed(self, intents: Sequence[JobIntent]) -> None:
        """Enqueue the intents of a committed execution (idempotent by each intent's key)."""
        ...


@dataclass
class JobIntents:
    """The intents of one execution; the triggers its DML fires add to the same list."""

    execution_id: str
    sink: JobSink | None = None  # None: a local run or a test, where enqueued jobs are recorded, never run
    intents: list[JobIntent] = field(default_factory=list)

    def add(self, circuit: str, payload: Any) -> JobIntent:
        depth, max_depth = (0, DEFAULT_MAX_CHAIN_DEPTH) if self.sink is None else self._chain()
        if depth + 1 > max_depth:
            raise JobError(
                f"job chain depth limit reached: this execution runs job {depth} of a chain, "
                f"and a chain is at most {max_depth} jobs deep"
            )
        if self.sink is not None and not self.sink.known_circuit(circuit):
            raise JobError(f"no active circuit {circuit!r} in this environment")
        try:
            size = len(json.dumps(payload, separators=(",", ":"), allow_nan=False))
        except (TypeError, ValueError):
            raise JobError(
                "a job payload must be JSON-like: nil, bool, int, float, str, arrays, str-keyed maps"
            ) from None
        if size > MAX_JOB_PAYLOAD_BYTES:
            raise JobError(f"a job payload is at most {MAX_JOB_PAYLOAD_BYTES} bytes as JSON, not {size}")
        intent = JobIntent(circuit, payload, f"exec:{self.execution_id}:{len(self.intents)}")
        self.intents.append(intent)
        return intent

    def _chain(self) -> tuple[int, int]:
        assert self.sink is not None
        return self.sink.chain_depth, self.sink.max_chain_depth

    def stage(self, transaction: RecordsTransaction) -> None:
        """Before commit: let the sink write the intents into the records transaction."""
        if self.sink is not None and self.intents:
            self.sink.stage(transaction, tuple(self.intents))

    def hand_over(self) -> Sequence[JobIntent]:
        """After commit: give the intents to the sink (if any); what was handed over."""
        if self.sink is not None and self.intents:
            self.sink.enqueue_committed(tuple(self.intents))
        return tuple(self.intents)
