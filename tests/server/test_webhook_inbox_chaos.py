"""Chaos, with real processes: `circuit serve` killed (SIGKILL) between a webhook's 202 and its
processing; once restarted, the webhook is applied, exactly once.

Two ways to land between the two: a server with no job workers (``--job-workers 0``), and a server
whose apply job waits for the tenant's coalescing window. The server under test is the one the CLI
runs, on its own data directory (SQLite), as in ``tests/cli/test_crm_system_of_record.py``.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from tests.cli.test_crm_system_of_record import Server, cli, eventually
from tests.server.routers.conftest import generic_event

SECRET = "chaos-secret-0123456789"


class PausedServer(Server):
    """`circuit serve` with no job workers: webhooks are stored and wait."""

    def options(self, data_dir: Path) -> list[str]:
        return [*super().options(data_dir), "--job-workers", "0"]


@pytest.fixture
def started() -> Iterator[list[Server]]:
    servers: list[Server] = []
    yield servers
    for server in servers:
        server.stop()


def signed(payload: dict[str, object]) -> tuple[bytes, dict[str, str]]:
    raw = json.dumps(payload).encode()
    t = str(int(time.time()))
    mac = hmac.new(SECRET.encode(), f"{t}.".encode() + raw, hashlib.sha256).hexdigest()
    return raw, {"content-type": "application/json", "x-circuit-signature": f"t={t},v1={mac}"}


def client(server: Server, key: str) -> httpx.Client:
    return httpx.Client(base_url=server.url, headers={"authorization": f"Bearer {key}"}, trust_env=False, timeout=60)


def contacts(api: httpx.Client) -> list[str]:
    answer = api.get("/v1/query", params={"soql": "SELECT LastName FROM Contact WHERE LastName LIKE 'Chaos%'"})
    assert answer.status_code == 200, answer.text
    return sorted(r["LastName"] for r in answer.json()["records"])


def kill_between_202_and_processing(first: Server, started: list[Server], tmp_path: Path) -> None:
    key = first.key
    assert key is not None
    cli(first, key, "settings", "set", "generic_hmac_secret", SECRET)
    deliveries = [signed(generic_event({"LastName": f"Chaos{n}"}, event_id=f"chaos-{n}")) for n in range(3)]
    with client(first, key) as api:
        answers = [api.post("/v1/hooks/generic", content=raw, headers=headers) for raw, headers in deliveries]
        assert [a.status_code for a in answers] == [202, 202, 202], [a.text for a in answers]
        ids = [i for a in answers for i in a.json()["inbox_ids"]]
        assert [api.get(f"/v1/inbox/{i}").json()["state"] for i in ids] == ["pending"] * 3
        assert contacts(api) == []
    first.kill()

    restarted = Server(tmp_path / "data", first.port)  # job workers, as by default
    started.append(restarted)
    with client(restarted, key) as api:
        eventually(lambda: all(api.get(f"/v1/inbox/{i}").json()["state"] == "applied" for i in ids), 60)
        assert contacts(api) == ["Chaos0", "Chaos1", "Chaos2"]  # each once
        assert cli(restarted, key, "inbox", "list", "--state", "applied").count(" applied ") == 3
        assert "no stored webhooks" in cli(restarted, key, "inbox", "list", "--state", "dead")
        executions = api.get("/v1/executions").json()["executions"]
        assert [e["status"] for e in executions if e["trigger"] == "generic:Contact.insert"] == ["ok"]  # one batch
        for raw, headers in deliveries:  # the sender's retries: already stored
            assert api.post("/v1/hooks/generic", content=raw, headers=headers).json() == {"duplicate": True}
        time.sleep(1.0)
        assert contacts(api) == ["Chaos0", "Chaos1", "Chaos2"]


def test_a_server_without_workers_killed_after_the_202_applies_the_webhooks_once_restarted(
    started: list[Server], tmp_path: Path
) -> None:
    first = PausedServer(tmp_path / "data")
    started.append(first)
    kill_between_202_and_processing(first, started, tmp_path)


def test_a_server_killed_inside_the_coalescing_window_applies_the_webhooks_once_restarted(
    started: list[Server], tmp_path: Path
) -> None:
    first = Server(tmp_path / "data")
    started.append(first)
    assert first.key is not None
    cli(first, first.key, "settings", "set", "coalesce_window_ms", "8000")  # the apply job waits 8 s
    kill_between_202_and_processing(first, started, tmp_path)
