"""Which backend a database URL gets: SQLite -> embedded, PostgreSQL -> Procrastinate (fleet)."""

from __future__ import annotations

from pathlib import Path

from ..storage_engine import database_url
from .embedded_queue import EmbeddedJobQueue
from .job_queue import JobQueue


def open_job_queue(target: str | Path, *, prefix: str = "cs_") -> JobQueue:
    """The job queue on the control-plane database ``target`` (a SQLite path or URL, or PostgreSQL)."""
    if database_url(target).startswith("postgresql"):
        from .fleet_queue import FleetJobQueue  # Procrastinate comes with the postgres extra

        return FleetJobQueue(target, prefix=prefix)
    return EmbeddedJobQueue(target, prefix=prefix)
