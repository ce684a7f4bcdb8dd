"""The CRM as system of record, as an operator runs it: a real `circuit serve`, configured with the CLI only.

The CRMs are the fake GoHighLevel and Salesforce servers on loopback; webhooks are signed as the
CRMs (or their relay) sign them. One test kills the server with SIGKILL while the CRM is still
answering a write, restarts it, and counts the CRM's records.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import os
import re
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat

from tests.cli.test_serve import ROOT, circuit, free_port
from tests.connectors.crm.fakes import FakeGoHighLevel, FakeSalesforce
from tests.server.conftest import executions_of

LOCATION = "loc-acme-001"
OUTBOX_OPTIONS = ("--outbox-backoff", "0.2", "--outbox-lease", "3", "--outbox-attempts", "5")
HMAC_SECRET = "relay-secret-0123456789"
SCORE, GRADE, NEXT = "cfScore0000000000001", "cfGrade0000000000002", "cfNext00000000000003"
INPUTS = {
    "cfSize00000000000004": ("Company_Size__c", 450),
    "cfVisit0000000000005": ("Website_Visits__c", 14),
    "cfOpens0000000000006": ("Emails_Opened__c", 6),
    "cfCall00000000000007": ("Called_Business__c", True),
}


class Server:
    """`circuit serve` in a subprocess, with a short outbox lease so a killed server's write is retried soon."""

    def __init__(self, data_dir: Path, port: int | None = None) -> None:
        self.data_dir = data_dir
        self.port = port or free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.process = subprocess.Popen(
            [sys.executable, "-m", "circuit_host.cli", "serve", *self.options(data_dir)],
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
            cwd=ROOT,
        )
        banner: list[str] = []
        deadline = time.monotonic() + 180
        assert self.process.stdout is not None
        while not any("API docs" in line for line in banner):
            line = self.process.stdout.readline()
            if not line or time.monotonic() > deadline:
                raise AssertionError("circuit serve did not start:\n" + "".join(banner) + (line or ""))
            banner.append(line)
        found = re.search(r"admin key:\s+(cs_\S+)", "".join(banner))
        self.key = found.group(1) if found else None
        while True:
            try:
                if httpx.get(f"{self.url}/healthz", trust_env=False).status_code == 200:
                    break
            except httpx.HTTPError:
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.1)

    def options(self, data_dir: Path) -> list[str]:
        return ["--port", str(self.port), "--data-dir", str(data_dir), *OUTBOX_OPTIONS]

    def kill(self) -> None:
        os.kill(self.process.pid, signal.SIGKILL)
        self.process.wait(timeout=30)

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.terminate()
            self.process.wait(timeout=30)


@pytest.fixture
def started(tmp_path: Path) -> Iterator[list[Server]]:
    servers: list[Server] = []
    yield servers
    for server in servers:
        server.stop()


def cli(server: Server, key: str, *args: str) -> str:
    done = circuit(*args, key=key, server=server.url)
    assert done.returncode == 0, (args, done.stdout, done.stderr)
    return done.stdout


def eventually(check: Callable[[], bool], timeout_s: float = 30.0) -> None:
    deadline = time.monotonic() + timeout_s
    while not check():
        if time.monotonic() > deadline:
            raise AssertionError("condition not reached in time")
        time.sleep(0.1)


@pytest.fixture
def salesforce() -> Iterator[FakeSalesforce]:
    fake = FakeSalesforce()
    yield fake
    fake.close()


@pytest.fixture
def ghl() -> Iterator[FakeGoHighLevel]:
    fake = FakeGoHighLevel(location_id=LOCATION)
    yield fake
    fake.close()


def configure_ghl(server: Server, key: str, fake: FakeGoHighLevel, tmp_path: Path) -> Ed25519PrivateKey:
    """What an operator types: GHL's public key and location, the custom-field mapping, GHL as the system of record."""
    signing = Ed25519PrivateKey.generate()
    pem = tmp_path / "ghl-public.pem"
    pem.write_bytes(signing.public_key().public_bytes(Encoding.PEM, PublicFormat.SubjectPublicKeyInfo))
    cli(server, key, "settings", "set", "ghl_public_key", f"@{pem}")
    cli(server, key, "settings", "set", "ghl_location_ids", json.dumps([LOCATION]))
    cli(server, key, "settings", "set", "ghl_custom_fields", json.dumps({k: n for k, (n, _) in INPUTS.items()}))
    selection = {"crm": "gohighlevel", "location_id": LOCATION, "api_key": fake.api_key, "base_url": fake.url}
    shown = cli(server, key, "settings", "set", "system_of_record", json.dumps({"production": selection}))
    assert fake.api_key not in shown
    return signing


def hot_lead_webhook(fake: FakeGoHighLevel) -> dict[str, Any]:
    contact_id = fake.add_contact(
        firstName="Priya",
        lastName="Raman",
        email="priya@acme-robotics.com",
        source="Referral",
        customFields=[{"id": k, "value": v} for k, (_, v) in INPUTS.items()],
    )
    return {
        "type": "ContactCreate",
        "locationId": LOCATION,
        "id": contact_id,
        "webhookId": f"wh-{contact_id}",
        "timestamp": datetime.now(UTC).isoformat().replace("+00:00", "Z"),
        "firstName": "Priya",
        "lastName": "Raman",
        "email": "priya@acme-robotics.com",
        "source": "Referral",
        "customFields": [{"id": k, "value": v} for k, (_, v) in INPUTS.items()],
    }


def post(server: Server, key: str, path: str, raw: bytes, headers: dict[str, str]) -> httpx.Response:
    headers = {"authorization": f"Bearer {key}", "content-type": "application/json", **headers}
    return httpx.post(f"{server.url}{path}", content=raw, headers=headers, trust_env=False, timeout=60)


def applied_status(server: Server, key: str, answer: httpx.Response) -> str:
    """The status of the execution that applied a webhook answered 202, once a worker ran it."""
    with httpx.Client(base_url=server.url, headers={"authorization": f"Bearer {key}"}, trust_env=False) as client:
        [execution] = executions_of(client, answer)
    return str(execution["status"])


def ghl_signature(signing: Ed25519PrivateKey, raw: bytes) -> dict[str, str]:
    return {"x-ghl-signature": base64.b64encode(signing.sign(raw)).decode()}


def puts(fake: FakeGoHighLevel, contact_id: str) -> list[dict[str, Any]]:
    return [r.body for r in fake.writes("PUT") if r.path == f"/contacts/{contact_id}"]


def test_ghl_as_system_of_record_configured_with_the_cli_scores_a_signed_contact_create(
    started: list[Server], ghl: FakeGoHighLevel, tmp_path: Path
) -> None:
    server = Server(tmp_path / "data")
    started.append(server)
    assert server.key is not None
    signing = configure_ghl(server, server.key, ghl, tmp_path)
    payload = hot_lead_webhook(ghl)
    raw = json.dumps(payload).encode()

    before = cli(server, server.key, "settings", "show")
    wrong = {"crm": "gohighlevel", "location_id": LOCATION, "api_key": "pit-wrong", "base_url": ghl.url}
    refused = circuit(
        "settings", "set", "system_of_record", json.dumps({"production": wrong}), key=server.key, server=server.url
    )
    assert refused.returncode == 2 and "HTTP 422" in refused.stderr and "Invalid JWT" in refused.stderr, refused.stderr
    assert cli(server, server.key, "settings", "show") == before  # nothing saved

    assert post(server, server.key, "/v1/hooks/ghl", raw, {}).status_code == 401  # unsigned
    forged = ghl_signature(Ed25519PrivateKey.generate(), raw)
    assert post(server, server.key, "/v1/hooks/ghl", raw, forged).status_code == 401  # signed by someone else
    time.sleep(1.0)
    assert ghl.writes() == [] and "no outbox entries" in cli(server, server.key, "outbox", "list")

    answer = post(server, server.key, "/v1/hooks/ghl", raw, ghl_signature(signing, raw))
    assert applied_status(server, server.key, answer) == "ok", answer.json()
    eventually(lambda: len(ghl.tasks) == 1 and len(puts(ghl, payload["id"])) == 1)
    [update] = puts(ghl, payload["id"])
    written = {c["id"]: c["field_value"] for c in update["customFields"]}
    assert written[SCORE] >= 70 and written[GRADE] == "A" and written[NEXT] == "Call within 1 hour"
    [task] = ghl.tasks.values()
    assert task["contactId"] == payload["id"] and task["title"].startswith("CRITICAL: call Priya Raman")
    eventually(lambda: cli(server, server.key, "outbox", "list", "--state", "sent").count(" sent ") == 2)
    assert len(ghl.contacts) == 1


def test_a_server_killed_while_the_crm_answers_loses_nothing_and_duplicates_nothing(
    started: list[Server], ghl: FakeGoHighLevel, tmp_path: Path
) -> None:
    server = Server(tmp_path / "data")
    started.append(server)
    key = server.key
    assert key is not None
    signing = configure_ghl(server, key, ghl, tmp_path)
    payload = hot_lead_webhook(ghl)
    raw = json.dumps(payload).encode()
    ghl.slow(20.0, "/tasks")  # the task is created at once, its answer comes 20 s later
    answer = post(server, key, "/v1/hooks/ghl", raw, ghl_signature(signing, raw))
    assert applied_status(server, key, answer) == "ok", answer.text
    eventually(lambda: len(ghl.tasks) == 1)
    server.kill()  # mid-dispatch: the CRM holds the task, the outbox does not know it
    ghl.slow(0)

    restarted = Server(tmp_path / "data", server.port)
    started.append(restarted)
    eventually(lambda: cli(restarted, key, "outbox", "list", "--state", "sent").count(" sent ") == 2, 60)
    assert len(ghl.tasks) == 1 and len(ghl.contacts) == 1  # nothing duplicated
    assert len(puts(ghl, payload["id"])) == 1  # the update was acknowledged before the kill: not resent
    stored = {c["id"]: c["value"] for c in ghl.contacts[payload["id"]]["customFields"]}
    assert stored[GRADE] == "A"  # nothing lost
    listing = cli(restarted, key, "outbox", "list")
    assert "create Task rows 1/1 attempts 2" in listing


def test_salesforce_as_system_of_record_scores_a_signed_cdc_create(
    started: list[Server], salesforce: FakeSalesforce, tmp_path: Path
) -> None:
    server = Server(tmp_path / "data")
    started.append(server)
    key = server.key
    assert key is not None
    event = json.loads((ROOT / "tests" / "webhooks" / "payloads" / "sfdc_contact_create.json").read_text())
    fields = {k: v for k, v in event["payload"].items() if k != "ChangeEventHeader" and not isinstance(v, dict)}
    contact_id = salesforce.add("Contact", **fields)
    event["payload"]["ChangeEventHeader"]["recordIds"] = [contact_id]
    cli(server, key, "settings", "set", "generic_hmac_secret", HMAC_SECRET)
    selection = {
        "crm": "salesforce",
        "instance_url": salesforce.url,
        "access_token": salesforce.token,
        "idempotency_field": "Circuit_Provisional_Id__c",
    }
    cli(server, key, "settings", "set", "system_of_record", json.dumps({"production": selection}))

    raw = json.dumps(event).encode()
    t = str(int(time.time()))
    mac = hmac.new(HMAC_SECRET.encode(), f"{t}.".encode() + raw, hashlib.sha256).hexdigest()
    wrong = {"x-circuit-signature": f"t={t},v1={'0' * 64}"}
    assert post(server, key, "/v1/hooks/salesforce-cdc", raw, wrong).status_code == 401
    answer = post(server, key, "/v1/hooks/salesforce-cdc", raw, {"x-circuit-signature": f"t={t},v1={mac}"})
    assert applied_status(server, key, answer) == "ok", answer.text
    eventually(lambda: len(salesforce.all("Task")) == 1 and salesforce.all("Contact")[0].get("VLPR_Grade__c") == "A")
    [task] = salesforce.all("Task")
    assert task["WhoId"] == contact_id and task["Subject"].startswith("CRITICAL: call")
    assert len(salesforce.all("Contact")) == 1
