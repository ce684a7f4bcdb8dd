"""API keys and tenant settings as the request path last read them, for one second.

Authenticating a key and reading its tenant's settings are two database reads; done in the ``require``
dependency they cost every request a thread hand-off (a sync dependency runs in the thread pool),
which on two busy cores is a wait for a scheduler slice. With this cache the dependency runs on the
event loop and reads the database only on a miss (in the thread pool).

An entry is trusted for ``ttl_s`` and only while this process has changed no tenant, setting, key or
token since it was read (``Tenants.changes``), so a revocation or a settings change made here applies
to the next request. One made by another process of a fleet applies within ``ttl_s``. Keys are held
under the sha256 of their plaintext; a failed authentication is never cached.
"""

from __future__ import annotations

import hashlib
import threading
import time
from collections import OrderedDict
from collections.abc import Callable
from typing import TypeVar

from ..platform import ApiKey, TenantSettings
from ..platform.tenants import Tenants

TTL_S = 1.0
_T = TypeVar("_T")
MAX_ENTRIES = 10_000


class CredentialCache:
    def __init__(self, tenants: Tenants, ttl_s: float = TTL_S, clock: Callable[[], float] = time.monotonic) -> None:
        self._tenants = tenants
        self._ttl_s = ttl_s
        self._clock = clock
        self._lock = threading.Lock()
        self._keys: OrderedDict[str, tuple[float, int, ApiKey]] = OrderedDict()
        self._settings: OrderedDict[str, tuple[float, int, TenantSettings]] = OrderedDict()

    def key(self, plaintext: str) -> ApiKey | None:
        """The key for ``plaintext`` as read within the last ``ttl_s``, or None (not known here: ask
        the database with ``Tenants.authenticate`` and ``remember_key`` what it answers)."""
        return self._get(self._keys, _digest(plaintext))

    def remember_key(self, plaintext: str, key: ApiKey, changes: int) -> None:
        """``changes``: ``Tenants.changes`` read before the database was asked."""
        self._put(self._keys, _digest(plaintext), key, changes)

    def settings(self, tenant_id: str) -> TenantSettings | None:
        return self._get(self._settings, tenant_id)

    def remember_settings(self, tenant_id: str, settings: TenantSettings, changes: int) -> None:
        self._put(self._settings, tenant_id, settings, changes)

    def _get(self, entries: OrderedDict[str, tuple[float, int, _T]], name: str) -> _T | None:
        with self._lock:
            found = entries.get(name)
            if found is None:
                return None
            read_at, changes, value = found
            if self._clock() - read_at >= self._ttl_s or changes != self._tenants.changes:
                del entries[name]
                return None
            return value

    def _put(self, entries: OrderedDict[str, tuple[float, int, _T]], name: str, value: _T, changes: int) -> None:
        with self._lock:
            entries[name] = (self._clock(), changes, value)
            entries.move_to_end(name)
            while len(entries) > MAX_ENTRIES:
                entries.popitem(last=False)


def _digest(plaintext: str) -> str:
    return hashlib.sha256(plaintext.encode("utf-8", "surrogatepass")).hexdigest()
