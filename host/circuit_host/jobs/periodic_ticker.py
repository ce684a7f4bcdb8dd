"""Cron schedules turned into jobs: each tick becomes one job across the whole fleet.

Every worker process runs a ticker; they all compute the same ticks, and the queue's
``enqueue_tick`` lets exactly one of them enqueue each (a compare-and-set on the schedule's
last tick, in the transaction that stores the job). After downtime only the newest missed tick
is enqueued (``missed="once"``), or none of them (``"skip"``: only ticks at most ``grace`` old run).
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Sequence
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import structlog
from croniter import croniter

from ..errors import Rejected
from .job_model import PeriodicSchedule
from .job_queue import JobQueue

log = structlog.get_logger("circuit.jobs")
ScheduleSource = Callable[[], Sequence[PeriodicSchedule]]
"""The schedules in force now; asked on every pass, so they may change while workers run."""


def check_schedule(schedule: PeriodicSchedule) -> None:
    """A precise error for a bad cron expression or time zone (at registration, not at the first tick)."""
    if not croniter.is_valid(schedule.cron):
        raise Rejected(f"schedule {schedule.id!r}: {schedule.cron!r} is not a cron expression")
    try:
        ZoneInfo(schedule.timezone)
    except (ZoneInfoNotFoundError, ValueError):
        raise Rejected(f"schedule {schedule.id!r}: unknown time zone {schedule.timezone!r}") from None


def latest_tick(schedule: PeriodicSchedule, now: datetime) -> datetime:
    """The newest tick at or before ``now``, in UTC (the cron expression is read in the schedule's zone)."""
    local = now.astimezone(ZoneInfo(schedule.timezone)).replace(microsecond=0) + timedelta(seconds=1)
    tick: datetime = croniter(schedule.cron, local).get_prev(datetime)
    return tick.astimezone(UTC)


class PeriodicTicker:
    """Enqueues due ticks every ``interval_s`` until stopped."""

    def __init__(
        self,
        queue: JobQueue,
        schedules: ScheduleSource,
        *,
        interval_s: float = 1.0,
        grace: timedelta = timedelta(minutes=1),
        clock: Callable[[], datetime] = lambda: datetime.now(UTC),
    ) -> None:
        self.queue = queue
        self.schedules = schedules
        self.interval_s = interval_s
        self.grace = grace
        self.clock = clock
        self.started = clock()  # a schedule never seen before runs from its first tick after this

    def run(self, stopping: threading.Event) -> None:
        while not stopping.is_set():
            try:
                self.tick_once()
            except Exception:  # the database is busy or gone: the next pass tries again
                log.exception("enqueuing periodic jobs failed")
            stopping.wait(self.interval_s)

    def tick_once(self) -> int:
        """Enqueue every due tick now; returns how many jobs this process enqueued."""
        now = self.clock()
        enqueued = 0
        for schedule in self.schedules():
            tick = latest_tick(schedule, now)
            last = self.queue.last_tick(schedule.id)
            if last is not None and tick <= last:
                continue
            if last is None and tick < self.started:
                continue
            if schedule.missed == "skip" and now - tick > self.grace:
                continue
            if self.queue.enqueue_tick(schedule, tick) is not None:
                enqueued += 1
                log.info("periodic job enqueued", schedule=schedule.id, tick=tick.isoformat())
        return enqueued
