"""Replay protection: an in-memory guard with a TTL."""

from __future__ import annotations

import threading
from datetime import UTC, datetime, timedelta

import pytest

from circuit_host.webhooks import InMemoryReplayGuard, ReplayGuard, WebhookRejected, check_replay

T0 = datetime(2026, 8, 3, 14, 35, tzinfo=UTC)


def test_an_id_is_accepted_once_per_scope() -> None:
    guard: ReplayGuard = InMemoryReplayGuard(ttl=timedelta(minutes=10))
    check_replay(guard, "acme:production:ghl", "wh-1", T0)
    with pytest.raises(WebhookRejected) as caught:
        check_replay(guard, "acme:production:ghl", "wh-1", T0 + timedelta(seconds=1))
    assert (caught.value.status, caught.value.reason) == (409, "replay")
    assert caught.value.message == "webhook 'wh-1' was already received"
    check_replay(guard, "acme:staging:ghl", "wh-1", T0)  # another environment is another scope
    check_replay(guard, "beta:production:ghl", "wh-1", T0)


def test_ids_expire_after_the_ttl() -> None:
    guard = InMemoryReplayGuard(ttl=timedelta(minutes=10))
    assert guard.claim("s", "a", T0)
    assert guard.claim("s", "b", T0 + timedelta(minutes=5))
    assert not guard.claim("s", "a", T0 + timedelta(minutes=9, seconds=59))
    assert guard.claim("s", "a", T0 + timedelta(minutes=10))  # expired: the timestamp check refuses it by now
    assert len(guard) == 2  # "a" expired and was claimed again; "b" still held
    assert guard.claim("s", "c", T0 + timedelta(minutes=16))
    assert len(guard) == 2  # "b" dropped on expiry


def test_a_none_id_cannot_be_checked_and_passes() -> None:
    check_replay(InMemoryReplayGuard(), "s", None, T0)


def test_max_entries_drops_the_oldest() -> None:
    guard = InMemoryReplayGuard(ttl=timedelta(hours=1), max_entries=3)
    for name in "abcd":
        assert guard.claim("s", name, T0)
    assert len(guard) == 3
    assert guard.claim("s", "a", T0)  # the oldest was forgotten
    assert not guard.claim("s", "d", T0)


def test_concurrent_claims_accept_exactly_one() -> None:
    guard = InMemoryReplayGuard()
    results: list[bool] = []
    barrier = threading.Barrier(16)

    def claim() -> None:
        barrier.wait()
        results.append(guard.claim("s", "same", T0))

    threads = [threading.Thread(target=claim) for _ in range(16)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sorted(results) == [False] * 15 + [True]


def test_bad_settings() -> None:
    with pytest.raises(ValueError):
        InMemoryReplayGuard(ttl=timedelta(0))
