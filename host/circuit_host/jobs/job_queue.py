"""The job-queue port: what the server, the CLI and job handlers see of either backend.

Delivery is at least once: a job whose worker dies is run again. A handler makes its effects
commit exactly once by either finishing the job inside its own transaction (``JobRun.complete_in``)
or keying its effects by the job id; ``README.md`` says what each backend guarantees.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Mapping
from datetime import datetime, timedelta
from typing import Protocol

import structlog
from sqlalchemy.engine import Connection

from .job_model import Job, JobFilter, JobRequest, JobState, PeriodicSchedule

log = structlog.get_logger("circuit.jobs")


class JobRun(Protocol):
    """One attempt of one job, handed to its handler (in a worker thread)."""

    @property
    def job(self) -> Job: ...

    def cancel_requested(self) -> bool:
        """Someone asked to cancel this job: stop early and raise ``JobCancelled``, or finish."""
        ...

    def link_execution(self, execution_id: str) -> None:
        """Record the execution this attempt runs, so the job shows it (``Job.execution_id``)."""
        ...

    def complete_in(self, connection: Connection) -> None:
        """Finish the job inside the caller's open transaction on the queue's database.

        Raises ``LeaseLost`` when this run no longer owns the job: roll back. Embedded backend:
        the job is marked succeeded in that transaction, so effects and completion commit together.
        Fleet backend: the job row is locked and its owner checked; Procrastinate records the
        completion right after the handler returns, so effects must also be keyed by job id.
        """
        ...


JobHandler = Callable[[JobRun], None]
"""Runs one attempt. Returning finishes the job; raising retries it (``JobCancelled``: cancels it)."""

DeadJobHandler = Callable[[Job, Connection], None]
"""Told that a job of its kind died (out of attempts: its handler kept failing, or its worker kept
stopping mid-job), with the dead job and an open transaction on the queue's database to act in
(e.g. enqueue what comes next with ``enqueue(..., connection=...)``). Where the backend marks the
job dead itself, this runs in that transaction, so both commit together; where Procrastinate marks it
(a fleet handler's last failure) it runs just before, in a transaction fenced like ``complete_in``.
A death may be reported more than once (a retried dead job dies again; a fleet worker stops between
the two transactions): make it idempotent. Its exception is logged and rolled back alone (a savepoint);
the job is dead either way.
"""


class JobQueue(Protocol):
    """Durable jobs on one database. Every method is thread-safe; ids are positive integers."""

    @property
    def backend(self) -> str:
        """``embedded`` (SQLite control plane) or ``fleet`` (Procrastinate on PostgreSQL)."""
        ...

    def enqueue(self, request: JobRequest, *, connection: Connection | None = None) -> Job | None:
        """Store a job; ``None`` when its ``queueing_lock`` is held by a waiting job.

        With ``connection`` (an open transaction on the queue's database) the job is stored in
        that transaction: it exists only if the caller commits. A ``key`` already used by the
        tenant returns the job that has it.
        """
        ...

    def get(self, job_id: int, *, tenant_id: str | None = None) -> Job | None:
        """The job, or ``None`` (also when it belongs to another tenant than ``tenant_id``)."""
        ...

    def list_jobs(self, filters: JobFilter) -> list[Job]: ...

    def count_jobs(self) -> dict[tuple[str, JobState], int]:
        """How many jobs of each kind are in each state, across tenants (metrics, queue depth)."""
        ...

    def cancel(self, job_id: int, *, tenant_id: str | None = None) -> Job:
        """A waiting job is cancelled at once; a running one is asked to stop (``cancel_requested``).

        ``NotFound`` for an unknown job, ``Conflict`` for a finished one.
        """
        ...

    def retry(self, job_id: int, *, tenant_id: str | None = None) -> Job:
        """Queue a dead job again, now, for one more attempt. ``Conflict`` unless it is dead."""
        ...

    def purge_finished(self, older_than: timedelta) -> int:
        """Delete jobs that finished (succeeded, cancelled or dead) longer ago than ``older_than``; how many."""
        ...

    def last_tick(self, schedule_id: str) -> datetime | None:
        """The newest tick of the schedule that was enqueued, by any process."""
        ...

    def enqueue_tick(self, schedule: PeriodicSchedule, tick: datetime) -> Job | None:
        """Enqueue the schedule's job for ``tick`` unless any process enqueued this tick or a later one."""
        ...

    def run_worker(
        self,
        handlers: Mapping[str, JobHandler],
        *,
        concurrency: int,
        stopping: threading.Event,
        on_dead: Mapping[str, DeadJobHandler] | None = None,
    ) -> None:
        """Claim and run jobs of the handled kinds, ``concurrency`` at a time in threads, until
        ``stopping`` is set; then let running jobs finish and return. ``on_dead[kind]`` hears of
        each job of that kind that dies here, including one whose (other) worker stopped mid-job."""
        ...

    def close(self) -> None: ...


def tell_dead(told: DeadJobHandler | None, job: Job, connection: Connection) -> None:
    """Run a kind's ``DeadJobHandler`` in the caller's transaction, behind a savepoint: its failure is
    logged and undone alone, and the caller's transaction (the one marking the job dead) goes on."""
    if told is None:
        return
    connection.exec_driver_sql("SAVEPOINT circuit_on_dead")
    try:
        told(job, connection)
    except Exception:
        connection.exec_driver_sql("ROLLBACK TO SAVEPOINT circuit_on_dead")
        log.exception("a dead job's handler failed", job_id=job.id, kind=job.kind)
    connection.exec_driver_sql("RELEASE SAVEPOINT circuit_on_dead")
