"""`circuit serve` and the remote commands, as an operator uses them: real processes, real HTTP."""

from __future__ import annotations

import json
import os
import re
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

ROOT = Path(__file__).resolve().parents[2]


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class Served:
    def __init__(self, data_dir: Path, *options: str) -> None:
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        command = ["serve", "--port", str(self.port), "--data-dir", str(data_dir), *options]
        self.process = subprocess.Popen(
            [sys.executable, "-m", "circuit_host.cli", *command],
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
            cwd=ROOT,
        )
        self.banner: list[str] = []
        self.output: list[str] = []
        try:
            self._wait_until_serving(data_dir)
        except BaseException:  # a server that never came up must not outlive the test
            self.stop()
            raise

    def _wait_until_serving(self, data_dir: Path) -> None:
        deadline = time.monotonic() + 120
        assert self.process.stdout is not None
        while not any("API docs" in line for line in self.banner):
            line = self.process.stdout.readline()
            if not line or time.monotonic() > deadline:
                raise AssertionError("circuit serve did not start:\n" + "".join(self.banner) + (line or ""))
            self.banner.append(line)
        # Keep reading what it prints: a full pipe would block its logging, and a failing test shows it.
        threading.Thread(target=self._drain, daemon=True).start()
        while True:
            try:
                if httpx.get(f"{self.url}/healthz", trust_env=False).status_code == 200:
                    break
            except httpx.HTTPError:
                if time.monotonic() > deadline:
                    raise AssertionError(f"circuit serve does not answer:\n{self.printed()}") from None
                time.sleep(0.1)
        shown = re.search(r"admin key:\s+(\S+)", "".join(self.banner))  # on the first start only
        saved = data_dir / "admin-credentials.json"
        self.key = shown.group(1) if shown else json.loads(saved.read_text())["admin_key"]

    def _drain(self) -> None:
        assert self.process.stdout is not None
        for line in self.process.stdout:
            self.output.append(line)

    def printed(self) -> str:
        """What the server printed after its banner (so far)."""
        return "".join(self.output[-200:])

    def stop(self) -> None:
        self.process.terminate()
        try:
            self.process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait(timeout=30)


@pytest.fixture
def served(tmp_path: Path) -> Iterator[Served]:
    server = Served(tmp_path / "data")
    yield server
    server.stop()


def circuit(*args: str, key: str, server: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "CIRCUIT_API_KEY": key, "CIRCUIT_SERVER": server}
    return subprocess.run(
        [sys.executable, "-m", "circuit_host.cli", *args],
        capture_output=True,
        text=True,
        timeout=120,
        cwd=ROOT,
        env=env,
    )


def test_serve_starts_with_virtual_lpr_live_and_prints_what_an_operator_needs(served: Served, tmp_path: Path) -> None:
    banner = "".join(served.banner)
    assert served.url in banner
    assert "/v1/hooks/ghl/" in banner and "/v1/hooks/generic/" in banner
    assert json.loads((tmp_path / "data" / "admin-credentials.json").read_text())["admin_key"] == served.key
    assert oct((tmp_path / "data" / "admin-credentials.json").stat().st_mode & 0o777) == "0o600"
    headers = {"authorization": f"Bearer {served.key}"}
    with httpx.Client(base_url=served.url, headers=headers, trust_env=False) as client:
        assert [c["name"] for c in client.get("/v1/environments/production/circuits").json()] == ["virtual_lpr"]
        lead = {
            "LastName": "Hot",
            "Email": "ceo@acme.io",
            "Company_Size__c": 900,
            "Website_Visits__c": 12,
            "Emails_Opened__c": 5,
            "Called_Business__c": True,
            "LeadSource": "Referral",
        }
        written = client.post("/v1/records/Contact", json={"records": [lead]}).json()
        assert written["execution"]["status"] == "ok"
        grade = client.get("/v1/query", params={"soql": "SELECT VLPR_Grade__c FROM Contact"}).json()["records"]
        assert grade[0]["VLPR_Grade__c"] == "A"

    logs = circuit("logs", key=served.key, server=served.url)
    assert logs.returncode == 0, logs.stderr
    assert "api:Contact.insert" in logs.stdout and "ok" in logs.stdout


def test_deploy_promote_and_rollback_from_the_command_line(served: Served, tmp_path: Path) -> None:
    source = tmp_path / "vlpr"
    source.mkdir()
    for name in ("circuit.zig", "tests.zig"):
        (source / name).write_text((ROOT / "examples" / "virtual_lpr" / name).read_text())
    (source / "circuit.toml").write_text(
        (ROOT / "examples" / "virtual_lpr" / "circuit.toml")
        .read_text()
        .replace('version = "1.0.0"', 'version = "1.2.0"')
    )
    built = subprocess.run(
        [sys.executable, "-m", "circuit_host.cli", "build", str(source)], capture_output=True, text=True, cwd=ROOT
    )
    assert built.returncode == 0, built.stderr
    bundle = re.search(r"bundle: (\S+)", built.stdout).group(1)  # type: ignore[union-attr]
    assert built.stdout.strip().splitlines()[-1].endswith(".wasm")  # the wasm stays the last line

    deployed = circuit("deploy", bundle, "--env", "staging", key=served.key, server=served.url)
    assert deployed.returncode == 0, deployed.stderr
    assert "virtual_lpr 1.2.0" in deployed.stdout
    promoted = circuit("promote", "--from", "staging", "--to", "production", key=served.key, server=served.url)
    assert "virtual_lpr 1.2.0" in promoted.stdout, promoted.stderr
    assert re.search(r"deploy gate \d+: passed", promoted.stderr), promoted.stderr  # it waited for the gate
    rolled = circuit("rollback", "--env", "production", "--circuit", "virtual_lpr", key=served.key, server=served.url)
    assert "virtual_lpr 1.0.0" in rolled.stdout, rolled.stderr
    refused = circuit(
        "rollback", "--env", "production", "--circuit", "virtual_lpr", key="cs_bad_key", server=served.url
    )
    assert refused.returncode == 2
    assert "401" in refused.stderr


def test_a_restart_keeps_the_tenant_and_does_not_redeploy(tmp_path: Path) -> None:
    first = Served(tmp_path / "data")
    first.stop()
    second = Served(tmp_path / "data")
    try:
        assert second.key == first.key
        with httpx.Client(base_url=second.url, headers={"authorization": f"Bearer {second.key}"}, trust_env=False) as c:
            uploads = [a for a in c.get("/v1/audit").json() if a["action"] == "deploy"]
            assert len(uploads) == 1
    finally:
        second.stop()


def test_operator_creates_a_tenant_whose_key_works_on_the_running_server(served: Served, tmp_path: Path) -> None:
    created = subprocess.run(
        [sys.executable, "-m", "circuit_host.cli", "tenant", "create", "Globex", "--data-dir", str(tmp_path / "data")],
        capture_output=True,
        text=True,
        cwd=ROOT,
    )
    assert created.returncode == 0, created.stderr
    key = re.search(r"admin key: (\S+)", created.stdout).group(1)  # type: ignore[union-attr]
    with httpx.Client(base_url=served.url, headers={"authorization": f"Bearer {key}"}, trust_env=False) as client:
        assert client.get("/v1/environments/production/circuits").json() == []  # a tenant of its own
        assert client.get("/v1/executions").status_code == 200
