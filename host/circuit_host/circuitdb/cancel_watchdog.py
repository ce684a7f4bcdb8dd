"""One thread that cancels PostgreSQL work still running at its deadline.

``statement_timeout`` bounds one statement; a DML's rows sent as one pipelined ``executemany`` are
many statements, each under the limit, and together past it. The watchdog sends the connection's
cancel request at the scope's deadline. A cancel that arrives while the connection is idle is
ignored by PostgreSQL, and ``disarm`` waits for a cancel being sent, so a cancel never outlives the
scope it was armed for.
"""

from __future__ import annotations

import heapq
import itertools
import threading
import time
from collections.abc import Callable

import structlog

log = structlog.get_logger("circuit.circuitdb")


class Armed:
    """One scope's pending cancel; ``disarm()`` when the scope ends (idempotent)."""

    def __init__(self, cancel: Callable[[], None]) -> None:
        self._cancel: Callable[[], None] | None = cancel
        self._lock = threading.Lock()
        self.fired = False

    def fire(self) -> None:
        with self._lock:
            if self._cancel is None:
                return
            cancel, self._cancel = self._cancel, None
            self.fired = True
            try:
                cancel()
            except Exception:  # the connection is gone: nothing left to cancel
                log.warning("cancelling a statement at its deadline failed", exc_info=True)

    def disarm(self) -> None:
        with self._lock:  # a cancel being sent finishes first
            self._cancel = None


class CancelWatchdog:
    """``arm(deadline, cancel)``: call ``cancel`` at ``deadline`` (``time.monotonic``) unless disarmed."""

    def __init__(self) -> None:
        self._heap: list[tuple[float, int, Armed]] = []
        self._order = itertools.count()
        self._wake = threading.Condition()
        self._thread: threading.Thread | None = None

    def arm(self, deadline: float, cancel: Callable[[], None]) -> Armed:
        armed = Armed(cancel)
        with self._wake:
            heapq.heappush(self._heap, (deadline, next(self._order), armed))
            if self._thread is None:
                self._thread = threading.Thread(target=self._run, name="circuitdb-cancel", daemon=True)
                self._thread.start()
            self._wake.notify()
        return armed

    def _run(self) -> None:
        while True:
            with self._wake:
                while not self._heap or self._heap[0][0] > time.monotonic():
                    timeout = self._heap[0][0] - time.monotonic() if self._heap else None
                    self._wake.wait(timeout)
                _, _, due = heapq.heappop(self._heap)
            due.fire()


WATCHDOG = CancelWatchdog()
"""The process's one watchdog thread (started at the first ``arm``)."""
