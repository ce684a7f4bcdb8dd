"""The API behind the dashboard on a real loopback server: who a key is, the overview's figures,
the live stream of executions (tenant-scoped, bounded, kept alive, resumable) and the dashboard's
own files with their security headers."""

from __future__ import annotations

import queue
import threading
import time
import uuid
from collections.abc import Iterator
from contextlib import ExitStack
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
import pytest

from circuit_host.client import ApiError, Client
from circuit_host.platform import ExecutionEntry
from circuit_host.server.routers import execution_stream
from tests.server.conftest import LiveServer, Tenant
from tests.server.test_end_to_end import deploy


def store(live: LiveServer, tenant: Tenant, env: str = "dev", status: str = "ok") -> str:
    """An execution as the server stores one, saved now."""
    execution_id = uuid.uuid4().hex
    live.state.platform.executions.save_execution(
        ExecutionEntry(
            id=execution_id,
            tenant_id=tenant.id,
            env=env,
            circuit="virtual_lpr",
            version="virtual_lpr@1.0.0",
            trigger="api:Contact.insert",
            status=status,
            started_at=datetime.now(UTC),
            duration_ms=3.5,
            usage={"queries": {"used": 1, "limit": 100}},
            debug_log=f"{START}{execution_id}\n{END}",
        )
    )
    return execution_id


START = "12:00:00.000 (0)|EXECUTION_START|execution "
END = "12:00:00.003 (3000)|EXECUTION_END|done"


class Tail:
    """``Client.stream_executions`` read by a thread, so a test can wait for events with a deadline."""

    def __init__(self, live: LiveServer, key: str, **kw: Any) -> None:
        self.client = Client(live.url, key)
        self.events: queue.Queue[tuple[str, dict[str, Any]] | BaseException] = queue.Queue()
        self.reader = threading.Thread(target=self._read, args=(kw,), daemon=True)
        self.reader.start()

    def _read(self, kw: dict[str, Any]) -> None:
        try:
            for event in self.client.stream_executions(**kw):
                self.events.put(event)
        except BaseException as exc:  # handed to the test
            self.events.put(exc)

    def next(self, seconds: float = 3.0) -> tuple[str, dict[str, Any]]:
        item = self.events.get(timeout=seconds)
        if isinstance(item, BaseException):
            raise item
        return item

    def nothing_for(self, seconds: float) -> None:
        with pytest.raises(queue.Empty):
            self.next(seconds)

    def close(self) -> None:
        self.client.close()
        self.reader.join(timeout=10)


@pytest.fixture
def tails(monkeypatch: pytest.MonkeyPatch) -> Iterator[list[Tail]]:
    """Tails to close after the test. A reader thread blocked on its socket keeps it open after
    the client closes, so the server ends these streams itself, soon, and the server can stop."""
    monkeypatch.setattr(execution_stream, "MAX_STREAM_SECONDS", 4.0)
    opened: list[Tail] = []
    yield opened
    for tail in opened:
        tail.close()


def test_whoami_tells_a_keys_tenant_and_scopes(live: LiveServer) -> None:
    acme = live.tenant("acme")
    _, reader = live.state.platform.tenants.create_api_key(acme.id, ["read"], "reader")
    _, hook = live.state.platform.tenants.create_api_key(acme.id, ["webhook"], "hooks")
    with acme.client(live) as admin, acme.client(live, reader) as read, acme.client(live, hook) as webhook:
        assert admin.get("/v1/whoami").json()["scopes"] == ["admin"]
        me = read.get("/v1/whoami").json()
        assert me["tenant_id"] == acme.id and me["scopes"] == ["read"]
        assert webhook.get("/v1/whoami").status_code == 403  # the dashboard needs at least read
    assert httpx.get(f"{live.url}/v1/whoami", trust_env=False).status_code == 401


def test_stats_are_the_callers_tenants_only(live: LiveServer) -> None:
    acme, globex = live.tenant("acme"), live.tenant("globex")
    store(live, acme, status="ok")
    store(live, acme, status="error")
    store(live, globex, env="production")
    with acme.client(live) as client:
        stats = client.get("/v1/stats", params={"window": "24h"}).json()
        assert client.get("/v1/stats", params={"window": "7d"}).status_code == 422
    assert [(c["env"], c["by_status"]) for c in stats["circuits"]] == [("dev", {"error": 1, "ok": 1})]
    assert stats["circuits"][0]["error_rate"] == 0.5 and stats["bucket_seconds"] == 900
    assert sum(b["ok"] + b["failed"] for b in stats["buckets"]) == 2


def test_the_stream_sends_the_tenants_new_executions_with_their_log_lines(live: LiveServer, tails: list[Tail]) -> None:
    acme, globex = live.tenant("acme"), live.tenant("globex")
    store(live, acme)  # before the streams opened: not sent
    tails.append(tail := Tail(live, acme.admin_key))
    tails.append(dev_only := Tail(live, acme.admin_key, env="dev", logs=False))
    time.sleep(1)  # both connected and past their first poll
    store(live, globex)  # another tenant's: never sent
    production = store(live, acme, env="production")
    started = time.monotonic()
    event, data = tail.next()
    assert time.monotonic() - started < 2
    assert (event, data["id"], data["env"], data["status"]) == ("execution", production, "production", "ok")
    assert [tail.next(), tail.next()] == [
        ("log", {"execution_id": production, "line": f"{START}{production}"}),
        ("log", {"execution_id": production, "line": END}),
    ]
    dev = store(live, acme, env="dev")
    assert tail.next()[1]["id"] == dev
    stored = live.state.platform.executions.get_execution(acme.id, dev)
    assert stored is not None
    assert dev_only.next() == ("execution", execution_stream.summary(stored))  # the production one filtered out
    dev_only.nothing_for(1.5)  # and no log lines: not asked for


def test_a_reconnect_with_last_event_id_goes_on_after_that_execution(live: LiveServer, tails: list[Tail]) -> None:
    acme = live.tenant("acme")
    seen = store(live, acme)
    time.sleep(0.01)
    missed = store(live, acme)  # saved while the client was away
    tails.append(tail := Tail(live, acme.admin_key, last_event_id=seen, logs=False))
    assert tail.next()[1]["id"] == missed
    tail.nothing_for(1.2)


def test_streams_are_bounded_per_tenant_and_a_closed_one_frees_its_place(
    live: LiveServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    acme, globex = live.tenant("acme"), live.tenant("globex")
    headers = {"authorization": f"Bearer {acme.admin_key}"}
    with ExitStack() as streams, httpx.Client(base_url=live.url, headers=headers, trust_env=False) as client:
        opened = [
            streams.enter_context(client.stream("GET", "/v1/executions/stream"))
            for _ in range(execution_stream.MAX_STREAMS_PER_TENANT)
        ]
        assert all(r.status_code == 200 for r in opened)
        refused = client.get("/v1/executions/stream")
        assert refused.status_code == 429 and "8 per tenant" in refused.json()["detail"]
        with globex.client(live) as other, other.stream("GET", "/v1/executions/stream") as theirs:
            assert theirs.status_code == 200  # another tenant's place is its own
        opened[0].close()
        deadline = time.monotonic() + 5
        while True:  # the server notices the closed stream at its next poll
            with client.stream("GET", "/v1/executions/stream") as again:
                if again.status_code == 200:
                    break
            assert time.monotonic() < deadline, "the closed stream's place was never freed"
            time.sleep(0.2)


def test_an_idle_stream_is_kept_alive(live: LiveServer, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(execution_stream, "KEEPALIVE_SECONDS", 0.6)
    acme = live.tenant("acme")
    with acme.client(live) as client, client.stream("GET", "/v1/executions/stream") as response:
        assert response.headers["content-type"].startswith("text/event-stream")
        assert response.headers["cache-control"] == "no-cache"
        lines = response.iter_lines()
        assert next(lines) == "retry: 1000"
        assert next(lines) == ""
        assert next(lines) == ": keepalive"


def test_the_stream_needs_a_key_with_read(live: LiveServer) -> None:
    acme = live.tenant("acme")
    _, hook = live.state.platform.tenants.create_api_key(acme.id, ["webhook"], "hooks")
    assert httpx.get(f"{live.url}/v1/executions/stream", trust_env=False).status_code == 401
    with pytest.raises(ApiError, match="HTTP 403"):
        next(Client(live.url, hook).stream_executions())


def test_the_dashboard_files_carry_a_strict_content_security_policy(live: LiveServer) -> None:
    with httpx.Client(base_url=live.url, trust_env=False) as client:
        assert client.get("/dashboard").headers["location"] == "/dashboard/"
        for path in ("/dashboard/", "/dashboard/js/app.js", "/dashboard/style.css"):
            response = client.get(path)
            assert response.status_code == 200, path
            policy = response.headers["content-security-policy"]
            assert "script-src 'self'" in policy and "frame-ancestors 'none'" in policy and "unsafe" not in policy
            assert response.headers["x-frame-options"] == "DENY"
        assert client.get("/dashboard/js/app.js").headers["content-type"].startswith("text/javascript")
        for outside in ("/dashboard/../../pyproject.toml", "/dashboard/%2e%2e/__init__.py", "/dashboard/nope.js"):
            assert client.get(outside).status_code == 404, outside
        docs = client.get("/docs").text
        assert "/dashboard/vendor/swagger-ui/swagger-ui-bundle.js" in docs and "cdn." not in docs
        assert client.get("/redoc").status_code == 404  # ReDoc would load from a CDN


def test_a_stored_execution_has_its_timeline_nested_and_timed(live: LiveServer, vlpr_bundles: dict[str, Path]) -> None:
    acme = live.tenant("acme")
    with acme.client(live) as client:
        deploy(client, vlpr_bundles["1.0.0"], env="dev")
        written = client.post("/v1/records/Contact", params={"env": "dev"}, json={"records": [{"LastName": "Lee"}]})
        execution = client.get(f"/v1/executions/{written.json()['execution']['id']}").json()
        listed = client.get("/v1/executions").json()["executions"][0]
    assert listed["timeline"] is None  # lists leave it out, as they leave out the log
    steps = execution["timeline"]
    assert [(s["kind"], s["name"], s["depth"], s["outcome"]) for s in steps] == [
        ("dml", "INSERT Contact", 0, "ok"),
        ("trigger", "trigger virtual_lpr@1.0.0 on Contact.after_insert", 1, "ok"),
        ("query", "SELECT Value__c FROM Circuit_Setting__c WHERE Name = 'census_url' LIMIT 1", 2, "ok"),
        ("dml", "UPDATE Contact", 2, "ok"),
    ]
    insert, trigger, query, update = steps
    assert insert["rows"] == 1 and query["rows"] == 0 and update["rows"] == 1
    for outer, inner in ((insert, trigger), (trigger, query), (trigger, update)):  # each inside its parent
        assert outer["start_ms"] <= inner["start_ms"]
        assert inner["start_ms"] + inner["duration_ms"] <= outer["start_ms"] + outer["duration_ms"] + 0.01
    assert query["start_ms"] + query["duration_ms"] <= update["start_ms"] + 0.01  # one after the other
    assert insert["start_ms"] + insert["duration_ms"] <= execution["duration_ms"]
