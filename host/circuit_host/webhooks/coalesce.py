"""Coalescing: a burst of changes to one object becomes one trigger execution of up to 200 records.

Changes with the same ``(tenant, env, object, action)`` that arrive within ``window_ms`` of the
first one are flushed together, the way Apex hands a trigger a batch. A batch is flushed when its
window ends, when it reaches ``max_records``, or on ``close()``. A change is never split unless it
alone holds more than ``max_records`` records (then it is cut into chunks of ``max_records``,
each keeping its ``webhook_id``). ``window_ms=0`` flushes every change at once, in the caller.

``flush`` runs outside the coalescer's lock, in the thread that made the batch ready (the caller of
``add``, the timer thread, or the caller of ``close``/``flush_due``); batches of one key are
delivered in order and never concurrently. An exception from ``flush`` is logged and swallowed:
the caller owns retries and dead-lettering.
"""

from __future__ import annotations

import logging
import threading
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from typing import NamedTuple

from .model import Change

log = logging.getLogger("circuit.webhooks.coalesce")


class CoalesceKey(NamedTuple):
    tenant: str
    env: str
    object: str
    action: str


FlushFn = Callable[[CoalesceKey, list[Change]], None]


@dataclass
class _Batch:
    deadline: float
    changes: list[Change] = field(default_factory=list)
    records: int = 0


class Coalescer:
    """Thread-safe batching of ``Change``s; see the module docstring.

    ``clock`` (seconds, monotonic) and ``background=False`` make it deterministic in tests: nothing
    is flushed by time until ``flush_due()`` is called.
    """

    def __init__(
        self,
        window_ms: float,
        max_records: int = 200,
        flush: FlushFn | None = None,
        *,
        clock: Callable[[], float] = time.monotonic,
        background: bool = True,
    ) -> None:
        if flush is None:
            raise TypeError("Coalescer needs a flush callable")
        if window_ms < 0 or max_records < 1:
            raise ValueError("window_ms must be >= 0 and max_records >= 1")
        self.window_s = window_ms / 1000
        self.max_records = max_records
        self._flush = flush
        self._clock = clock
        self._cond = threading.Condition()
        self._pending: dict[CoalesceKey, _Batch] = {}
        self._ready: dict[CoalesceKey, deque[list[Change]]] = {}
        self._draining: set[CoalesceKey] = set()
        self._closed = False
        self._thread: threading.Thread | None = None
        if background and self.window_s > 0:
            self._thread = threading.Thread(target=self._run, name="webhook-coalescer", daemon=True)
            self._thread.start()

    # --- public ------------------------------------------------------------------------

    def add(self, tenant: str, env: str, change: Change) -> None:
        """Queue ``change``; flushes here when it fills a batch (or when the window is 0)."""
        key = CoalesceKey(tenant, env, change.object, change.action)
        size = len(change.records)
        pieces = [change]
        if size > self.max_records:
            pieces = [
                replace(change, records=change.records[i : i + self.max_records])
                for i in range(0, size, self.max_records)
            ]
        with self._cond:
            if self._closed:
                raise RuntimeError("coalescer is closed")
            now = self._clock()
            for piece in pieces:
                batch = self._pending.get(key)
                if batch is not None and batch.records + len(piece.records) > self.max_records:
                    self._make_ready(key)
                    batch = None
                if batch is None:
                    batch = self._pending[key] = _Batch(deadline=now + self.window_s)
                    self._cond.notify_all()  # the timer may need to wake earlier
                batch.changes.append(piece)
                batch.records += len(piece.records)
                if batch.records >= self.max_records or self.window_s == 0:
                    self._make_ready(key)
            mine = self._claim_drains([key])
        self._drain(mine)

    def flush_due(self) -> int:
        """Flush every batch whose window has ended (by ``clock``); answers how many were made ready."""
        with self._cond:
            due = self._collect_due(self._clock())
            mine = self._claim_drains(due)
        self._drain(mine)
        return len(due)

    def close(self) -> None:
        """Flush everything pending, wait for in-flight flushes, stop the timer. Idempotent."""
        with self._cond:
            self._closed = True
            keys = list(self._pending)
            for key in keys:
                self._make_ready(key)
            mine = self._claim_drains(list(self._ready))
            self._cond.notify_all()
        self._drain(mine)
        with self._cond:
            while self._draining:
                self._cond.wait()
        if self._thread is not None and self._thread is not threading.current_thread():
            self._thread.join()

    def pending_records(self) -> int:
        with self._cond:
            return sum(b.records for b in self._pending.values())

    def __enter__(self) -> Coalescer:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # --- internals (the _cond lock held where noted) -----------------------------------

    def _make_ready(self, key: CoalesceKey) -> None:  # lock held
        batch = self._pending.pop(key)
        self._ready.setdefault(key, deque()).append(batch.changes)

    def _collect_due(self, now: float) -> list[CoalesceKey]:  # lock held
        due = [key for key, batch in self._pending.items() if batch.deadline <= now]
        for key in due:
            self._make_ready(key)
        return due

    def _claim_drains(self, keys: list[CoalesceKey]) -> list[CoalesceKey]:  # lock held
        """The keys with ready batches that no other thread is delivering; this thread delivers them."""
        mine = [k for k in dict.fromkeys(keys) if k in self._ready and k not in self._draining]
        self._draining.update(mine)
        return mine

    def _drain(self, keys: list[CoalesceKey]) -> None:  # lock NOT held
        for key in keys:
            while True:
                with self._cond:
                    queue = self._ready.get(key)
                    if not queue:
                        self._ready.pop(key, None)
                        self._draining.discard(key)
                        self._cond.notify_all()
                        break
                    changes = queue.popleft()
                try:
                    self._flush(key, changes)
                except Exception:
                    log.exception("webhook batch flush failed for %s (%d changes)", key, len(changes))

    def _run(self) -> None:
        while True:
            with self._cond:
                if self._closed:
                    return
                if not self._pending:
                    self._cond.wait()
                    continue
                wait = min(b.deadline for b in self._pending.values()) - self._clock()
                if wait > 0:
                    self._cond.wait(wait)
                    continue
                mine = self._claim_drains(self._collect_due(self._clock()))
            self._drain(mine)
