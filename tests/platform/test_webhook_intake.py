"""Webhook intake: replayed ids are refused, the last-seen version of each record is kept."""

from __future__ import annotations

import threading
from collections.abc import Callable
from datetime import UTC, datetime, timedelta

from circuit_host.platform import Platform, Tenant

T0 = datetime(2026, 7, 1, 12, 0, tzinfo=UTC)


def test_replayed_webhook_ids_are_refused(platform: Platform, tenant: Tenant) -> None:
    assert platform.webhooks.remember_webhook_id(tenant.id, "ghl", "wh-1", 300)
    assert not platform.webhooks.remember_webhook_id(tenant.id, "ghl", "wh-1", 300)
    assert platform.webhooks.remember_webhook_id(tenant.id, "generic", "wh-1", 300)  # ids are per source
    long_id = "x" * 500
    assert platform.webhooks.remember_webhook_id(tenant.id, "ghl", long_id, 300)
    assert not platform.webhooks.remember_webhook_id(tenant.id, "ghl", long_id, 300)


def test_an_expired_webhook_id_may_come_again(open_platform: Callable[..., Platform]) -> None:
    now = [T0]
    platform = open_platform(clock=lambda: now[0])
    tenant = platform.tenants.create_tenant("Expiry")
    assert platform.webhooks.remember_webhook_id(tenant.id, "ghl", "wh-1", 60)
    now[0] = T0 + timedelta(seconds=59)
    assert not platform.webhooks.remember_webhook_id(tenant.id, "ghl", "wh-1", 60)
    now[0] = T0 + timedelta(seconds=61)
    assert platform.webhooks.remember_webhook_id(tenant.id, "ghl", "wh-1", 60)


def test_replay_detection_holds_under_concurrency(open_platform: Callable[..., Platform]) -> None:
    one, two = open_platform(), open_platform()
    tenant = one.tenants.create_tenant("Concurrent")
    results: list[bool] = []
    barrier = threading.Barrier(2)

    def deliver(platform: Platform) -> None:
        for i in range(20):
            if i == 0:
                barrier.wait()
            results.append(platform.webhooks.remember_webhook_id(tenant.id, "ghl", f"wh-{i}", 300))

    threads = [threading.Thread(target=deliver, args=(p,)) for p in (one, two)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert results.count(True) == 20 and results.count(False) == 20


def test_last_seen_records(platform: Platform, tenant: Tenant) -> None:
    assert platform.webhooks.last_seen(tenant.id, "production", "Contact", ["a", "b"]) == {}
    platform.webhooks.remember_records(tenant.id, "production", "Contact", [{"Id": "a", "Email": "a@x"}, {"Id": "b"}])
    platform.webhooks.remember_records(tenant.id, "production", "Contact", [{"Id": "a", "Email": "a2@x"}])
    assert platform.webhooks.last_seen(tenant.id, "production", "contact", ["a", "b", "c"]) == {
        "a": {"Id": "a", "Email": "a2@x"},
        "b": {"Id": "b"},
    }
    assert platform.webhooks.last_seen(tenant.id, "staging", "Contact", ["a"]) == {}  # environments are separate
    platform.webhooks.forget_records(tenant.id, "production", "Contact", ["a"])
    assert list(platform.webhooks.last_seen(tenant.id, "production", "Contact", ["a", "b"])) == ["b"]
    many = [{"Id": f"r{i}"} for i in range(1200)]
    platform.webhooks.remember_records(tenant.id, "dev", "Lead", many)
    assert len(platform.webhooks.last_seen(tenant.id, "dev", "Lead", [r["Id"] for r in many])) == 1200
