"""Durable jobs: one port (``JobQueue``), an embedded SQLite backend and a Procrastinate fleet backend.

See ``README.md`` for the guarantees. ``open_job_queue(url)`` picks the backend from the URL; the
fleet backend (``fleet_queue``) needs the ``postgres`` extra and is imported only for PostgreSQL.
"""

from .embedded_queue import EmbeddedJobQueue
from .job_model import (
    FINISHED,
    Job,
    JobCancelled,
    JobFilter,
    JobRequest,
    JobState,
    LeaseLost,
    PeriodicSchedule,
    RetryPolicy,
)
from .job_queue import DeadJobHandler, JobHandler, JobQueue, JobRun
from .job_worker import Worker
from .queue_backends import open_job_queue

__all__ = [
    "FINISHED",
    "DeadJobHandler",
    "EmbeddedJobQueue",
    "Job",
    "JobCancelled",
    "JobFilter",
    "JobHandler",
    "JobQueue",
    "JobRequest",
    "JobRun",
    "JobState",
    "LeaseLost",
    "PeriodicSchedule",
    "RetryPolicy",
    "Worker",
    "open_job_queue",
]
