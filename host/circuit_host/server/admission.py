"""How many executions run at once: bounded overall and per tenant, refused beyond that.

Executions run in the server's thread pool; a trigger waiting on a slow callout holds its thread.
Without a bound, a few dozen such requests from one tenant stalled every tenant and the probes.
A request over the bound is refused at once (429 when its tenant has its share running, 503 when
the server is full) with ``Retry-After``; nothing queues behind a blocked thread.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import contextmanager

from .problems import Problem

RETRY_AFTER_S = 1


class ExecutionAdmission:
    def __init__(self, max_total: int, max_per_tenant: int) -> None:
        self.max_total = max_total
        self.max_per_tenant = max_per_tenant
        self._running: dict[str, int] = {}
        self._total = 0
        self._lock = threading.Lock()

    @contextmanager
    def admitted(self, tenant_id: str) -> Iterator[None]:
        """Hold one execution slot of ``tenant_id`` for the block, or refuse with a problem."""
        with self._lock:
            if self._running.get(tenant_id, 0) >= self.max_per_tenant:
                raise Problem(
                    429,
                    "Too many concurrent executions",
                    f"this tenant already has {self.max_per_tenant} executions running",
                    {"Retry-After": str(RETRY_AFTER_S)},
                )
            if self._total >= self.max_total:
                raise Problem(
                    503,
                    "Server busy",
                    "the server is running all the executions it can",
                    {"Retry-After": str(RETRY_AFTER_S)},
                )
            self._running[tenant_id] = self._running.get(tenant_id, 0) + 1
            self._total += 1
        try:
            yield
        finally:
            with self._lock:
                self._total -= 1
                left = self._running[tenant_id] - 1
                if left:
                    self._running[tenant_id] = left
                else:
                    del self._running[tenant_id]

    def running(self, tenant_id: str | None = None) -> int:
        with self._lock:
            return self._total if tenant_id is None else self._running.get(tenant_id, 0)
