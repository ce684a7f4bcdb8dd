"""The server's job queue and its worker: the queue on the control-plane database, the handlers
the server runs, and the periodic schedules it keeps.

``circuit serve`` starts the worker in-process (``ServerSettings.job_workers`` threads; 0 leaves
the jobs to ``circuit worker`` processes); ``circuit worker`` runs the same thing without HTTP.
Other job kinds register their handler with ``register`` before ``start`` (``ServerState`` holds
this as ``state.jobs``, so a handler that runs circuits closes over the state).
"""

from __future__ import annotations

from datetime import timedelta

import structlog

from ..errors import Rejected
from ..jobs import DeadJobHandler, JobHandler, JobQueue, JobRequest, JobRun, PeriodicSchedule, Worker, open_job_queue
from ..jobs.periodic_ticker import ScheduleSource
from ..observability import JobCount
from ..platform import Platform

log = structlog.get_logger("circuit.server")

RETENTION_KIND = "platform.retention"
RETENTION = PeriodicSchedule(RETENTION_KIND, "17 * * * *", RETENTION_KIND)
"""Hourly: executions and gate runs past each tenant's retention are purged (missed hours: once),
and jobs that finished more than ``FINISHED_JOBS_KEPT`` ago."""
FINISHED_JOBS_KEPT = timedelta(days=7)


class ServerJobs:
    """Owns the queue and, once started, the worker. ``close()`` is idempotent."""

    def __init__(self, platform: Platform, platform_url: str, concurrency: int, lease_s: float = 30.0) -> None:
        if concurrency < 0:
            raise Rejected("job workers must not be negative")
        self.platform = platform
        self.concurrency = concurrency
        self.queue: JobQueue = open_job_queue(platform_url, lease_s=lease_s)
        self.handlers: dict[str, JobHandler] = {RETENTION_KIND: self.purge_expired}
        self.on_dead: dict[str, DeadJobHandler] = {}
        self.schedules: list[PeriodicSchedule] = [RETENTION]
        self.schedule_sources: list[ScheduleSource] = []  # asked on every tick (deployed circuits' schedules)
        self.at_start: list[str] = []  # kinds enqueued once when this process's worker starts
        self._worker: Worker | None = None
        self._closed = False

    def register(
        self,
        kind: str,
        handler: JobHandler,
        *schedules: PeriodicSchedule,
        on_dead: DeadJobHandler | None = None,
        at_start: bool = False,
    ) -> None:
        """Add a job kind (and schedules that enqueue it; ``on_dead``: told when one of its jobs dies,
        ``jobs/README.md``; ``at_start``: one job of it is also enqueued when a worker starts, for a
        pass that should not wait for the first tick); before ``start``."""
        if self._worker is not None:
            raise RuntimeError("register job handlers before the worker starts")
        self.handlers[kind] = handler
        self.schedules.extend(schedules)
        if on_dead is not None:
            self.on_dead[kind] = on_dead
        if at_start:
            self.at_start.append(kind)

    def start(self) -> None:
        """Start the in-process worker, unless it runs elsewhere (``concurrency`` 0)."""
        if self.concurrency and self._worker is None:
            self._worker = Worker(
                self.queue,
                self.handlers,
                concurrency=self.concurrency,
                schedules=self.current_schedules,
                on_dead=self.on_dead,
            )
            self._worker.start()
            for kind in self.at_start:
                self.queue.enqueue(JobRequest(kind, queueing_lock=kind))  # at most one waiting, fleet-wide

    def workers_problem(self) -> str | None:
        """``/readyz``: ``None`` when jobs can run here (or run in ``circuit worker`` processes), else why not."""
        if self.concurrency == 0:
            return None
        if self._worker is None:
            return "the job worker has not started"
        return self._worker.problem()

    def job_counts(self) -> list[JobCount]:
        """``circuit_jobs{queue,state}``: one series per job kind and state."""
        return [JobCount(kind, state.value, n) for (kind, state), n in sorted(self.queue.count_jobs().items())]

    def add_schedule_source(self, source: ScheduleSource) -> None:
        """Schedules that change while the worker runs (a callable asked on every tick); before ``start``."""
        if self._worker is not None:
            raise RuntimeError("add schedule sources before the worker starts")
        self.schedule_sources.append(source)

    def current_schedules(self) -> list[PeriodicSchedule]:
        return [*self.schedules, *(schedule for source in self.schedule_sources for schedule in source())]

    def close(self) -> None:
        if self._closed:
            return
        self._closed = True
        if self._worker is not None:
            self._worker.stop()
        self.queue.close()

    def purge_expired(self, run: JobRun) -> None:
        """Retention is idempotent: a re-run after a crash purges what is left."""
        platform = self.platform
        purged = platform.executions.purge_expired_executions()
        gate_runs = platform.deployments.purge_expired_gate_runs()
        jobs = self.queue.purge_finished(FINISHED_JOBS_KEPT)
        log.info("executions purged", count=purged, gate_runs=gate_runs, jobs=jobs, job_id=run.job.id)
