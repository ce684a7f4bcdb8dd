"""How many executions run at once: bounded overall and per tenant, briefly queued beyond that.

Executions run in the server's thread pool; a trigger waiting on a slow callout holds its thread.
Without a bound, a few dozen such requests from one tenant stalled every tenant and the probes.
A request over the bound waits on the event loop (no thread held) up to ``wait_s`` for a slot, as
a burst of writes should be absorbed rather than failed; if none frees, it is refused (429 when
its tenant has its share running, 503 when the server is full) with ``Retry-After``. Callers on
threads (``admitted``) are refused at once: a waiting thread is what the bound exists to avoid.
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager, contextmanager

from .problems import Problem

RETRY_AFTER_S = 1


class ExecutionAdmission:
    def __init__(self, max_total: int, max_per_tenant: int, wait_s: float = 0.0) -> None:
        self.max_total = max_total
        self.max_per_tenant = max_per_tenant
        self.wait_s = wait_s
        self._running: dict[str, int] = {}
        self._total = 0
        self._lock = threading.Lock()
        self._waiters: list[tuple[asyncio.AbstractEventLoop, asyncio.Future[None]]] = []

    @contextmanager
    def admitted(self, tenant_id: str) -> Iterator[None]:
        """Hold one execution slot of ``tenant_id`` for the block, or refuse at once with a problem."""
        with self._lock:
            refusal = self._refusal(tenant_id)
            if refusal is not None:
                raise refusal
            self._take(tenant_id)
        try:
            yield
        finally:
            self._release(tenant_id)

    @asynccontextmanager
    async def waited(self, tenant_id: str) -> AsyncIterator[None]:
        """Hold one slot of ``tenant_id`` for the block, waiting up to ``wait_s`` for one to free;
        then refuse as ``admitted`` does. Waiters are woken in arrival order at each release."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + self.wait_s
        while True:
            with self._lock:
                refusal = self._refusal(tenant_id)
                if refusal is None:
                    self._take(tenant_id)
                    break
                left = deadline - loop.time()
                if left <= 0:
                    raise refusal
                waiter = (loop, loop.create_future())
                self._waiters.append(waiter)
            try:
                await asyncio.wait_for(waiter[1], left)
            except TimeoutError:
                pass  # one last look, then the refusal
            finally:
                with self._lock:
                    if waiter in self._waiters:
                        self._waiters.remove(waiter)
        try:
            yield
        finally:
            self._release(tenant_id)

    def running(self, tenant_id: str | None = None) -> int:
        with self._lock:
            return self._total if tenant_id is None else self._running.get(tenant_id, 0)

    def waiting(self) -> int:
        """Requests waiting for a slot now."""
        with self._lock:
            return len(self._waiters)

    def _refusal(self, tenant_id: str) -> Problem | None:
        if self._running.get(tenant_id, 0) >= self.max_per_tenant:
            return Problem(
                429,
                "Too many concurrent executions",
                f"this tenant already has {self.max_per_tenant} executions running",
                {"Retry-After": str(RETRY_AFTER_S)},
            )
        if self._total >= self.max_total:
            return Problem(
                503,
                "Server busy",
                "the server is running all the executions it can",
                {"Retry-After": str(RETRY_AFTER_S)},
            )
        return None

    def _take(self, tenant_id: str) -> None:
        self._running[tenant_id] = self._running.get(tenant_id, 0) + 1
        self._total += 1

    def _release(self, tenant_id: str) -> None:
        """Free a slot (from any thread) and wake the waiters to try for it."""
        with self._lock:
            self._total -= 1
            left = self._running[tenant_id] - 1
            if left:
                self._running[tenant_id] = left
            else:
                del self._running[tenant_id]
            waiters, self._waiters = self._waiters, []
        for loop, future in waiters:
            if not loop.is_closed():
                loop.call_soon_threadsafe(_wake, future)


def _wake(future: asyncio.Future[None]) -> None:
    if not future.done():
        future.set_result(None)
