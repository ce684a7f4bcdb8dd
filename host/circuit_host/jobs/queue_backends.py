"""Which backend a database URL gets: SQLite -> embedded, PostgreSQL -> Procrastinate (fleet)."""

from __future__ import annotations

from pathlib import Path

from ..storage_engine import database_url
from .embedded_queue import EmbeddedJobQueue
from .job_queue import JobQueue


def open_job_queue(target: str | Path, *, prefix: str = "cs_", lease_s: float = 30.0) -> JobQueue:
    """The job queue on the control-plane database ``target`` (a SQLite path or URL, or PostgreSQL).

    ``lease_s``: how long a job whose worker stopped stays claimed before another worker takes it
    over; running jobs are heartbeated every third of it."""
    if database_url(target).startswith("postgresql"):
        from .fleet_queue import FleetJobQueue  # Procrastinate comes with the postgres extra

        return FleetJobQueue(target, prefix=prefix, heartbeat_s=lease_s / 3, stalled_after_s=lease_s)
    return EmbeddedJobQueue(target, prefix=prefix, lease_s=lease_s)
