"""A worker: runs a queue's jobs in threads, and its periodic schedules, until stopped.

``circuit serve`` starts one in-process; ``circuit worker`` runs one on its own. Either backend:
the queue decides how jobs are claimed (``JobQueue.run_worker``).
"""

from __future__ import annotations

import threading
from collections.abc import Mapping, Sequence
from types import TracebackType

import structlog

from ..errors import Rejected
from .job_model import PeriodicSchedule
from .job_queue import DeadJobHandler, JobHandler, JobQueue
from .periodic_ticker import PeriodicTicker, ScheduleSource, check_schedule

log = structlog.get_logger("circuit.jobs")


class Worker:
    """``Worker(queue, handlers, concurrency=N, on_dead={kind: told})``; ``start()``, ``stop()``
    (idempotent), or a ``with`` block."""

    def __init__(
        self,
        queue: JobQueue,
        handlers: Mapping[str, JobHandler],
        *,
        concurrency: int = 4,
        schedules: Sequence[PeriodicSchedule] | ScheduleSource = (),
        tick_interval_s: float = 1.0,
        on_dead: Mapping[str, DeadJobHandler] | None = None,
    ) -> None:
        if concurrency < 1:
            raise Rejected("concurrency must be at least 1")
        self.queue = queue
        self.handlers = dict(handlers)
        self.on_dead = dict(on_dead or {})
        self.concurrency = concurrency
        source = schedules if callable(schedules) else (lambda fixed=tuple(schedules): fixed)
        for schedule in source():
            check_schedule(schedule)
            if schedule.kind not in self.handlers:
                raise Rejected(f"schedule {schedule.id!r} enqueues {schedule.kind!r}, which no handler runs")
        self.ticker = PeriodicTicker(queue, source, interval_s=tick_interval_s)
        self._stopping = threading.Event()
        self._threads: list[threading.Thread] = []

    def start(self) -> None:
        if self._threads:
            return
        self._threads = [
            threading.Thread(target=self._run_jobs, name="circuit-worker", daemon=True),
            threading.Thread(target=self.ticker.run, args=(self._stopping,), name="circuit-ticker", daemon=True),
        ]
        for thread in self._threads:
            thread.start()
        log.info("worker started", backend=self.queue.backend, concurrency=self.concurrency, kinds=list(self.handlers))

    def problem(self) -> str | None:
        """``None`` while every thread it started runs (``/readyz``'s ``workers`` check), else what stopped."""
        if self._stopping.is_set():
            return "the job worker is stopping"
        stopped = [thread.name for thread in self._threads if not thread.is_alive()]
        return f"job worker thread(s) stopped: {', '.join(stopped)}" if stopped else None

    def stop(self, timeout: float | None = 60.0) -> None:
        """Stop claiming, let running jobs finish (up to ``timeout``), stop ticking."""
        self._stopping.set()
        for thread in self._threads:
            thread.join(timeout)

    def _run_jobs(self) -> None:
        try:
            self.queue.run_worker(
                self.handlers, concurrency=self.concurrency, stopping=self._stopping, on_dead=self.on_dead
            )
        except Exception:
            log.exception("worker stopped on an error")
            raise

    def __enter__(self) -> Worker:
        self.start()
        return self

    def __exit__(
        self, _type: type[BaseException] | None, _value: BaseException | None, _tb: TracebackType | None
    ) -> None:
        self.stop()
