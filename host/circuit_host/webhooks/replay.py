"""Replay protection: a webhook id is accepted once per scope.

The server records ids durably (its platform store); ``InMemoryReplayGuard`` is for tests and a
single process. Keep ids at least as long as the signature tolerance, so a replay is refused
either as a seen id or as stale.
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from datetime import datetime, timedelta
from typing import Protocol

from .errors import WebhookRejected


class ReplayGuard(Protocol):
    def claim(self, scope: str, webhook_id: str, now: datetime) -> bool:
        """Record ``webhook_id`` in ``scope`` (e.g. ``tenant:env:source``); False if it was already there."""
        ...


def check_replay(guard: ReplayGuard, scope: str, webhook_id: str | None, now: datetime) -> None:
    """Claim ``webhook_id``, raising 409 ``replay`` if it was seen. A None id cannot be checked and passes."""
    if webhook_id is not None and not guard.claim(scope, webhook_id, now):
        raise WebhookRejected(409, "replay", f"webhook {webhook_id[:120]!r} was already received")


class InMemoryReplayGuard:
    """Ids remembered for ``ttl`` (and at most ``max_entries``, oldest dropped first); thread-safe."""

    def __init__(self, ttl: timedelta = timedelta(minutes=10), max_entries: int = 100_000) -> None:
        if ttl <= timedelta(0) or max_entries < 1:
            raise ValueError("ttl and max_entries must be positive")
        self.ttl = ttl
        self.max_entries = max_entries
        self._seen: OrderedDict[tuple[str, str], datetime] = OrderedDict()  # insertion order = expiry order
        self._lock = threading.Lock()

    def claim(self, scope: str, webhook_id: str, now: datetime) -> bool:
        key = (scope, webhook_id)
        with self._lock:
            while self._seen:
                oldest, expires = next(iter(self._seen.items()))
                if expires > now and len(self._seen) < self.max_entries:
                    break
                del self._seen[oldest]
            seen_until = self._seen.get(key)
            if seen_until is not None and seen_until > now:
                return False
            self._seen[key] = now + self.ttl
            self._seen.move_to_end(key)
            return True

    def __len__(self) -> int:
        with self._lock:
            return len(self._seen)
