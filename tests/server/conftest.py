"""A real server for the tests: uvicorn on loopback in a thread, httpx as the client."""

from __future__ import annotations

import base64
import socket
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
import uvicorn
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat
from pydantic import SecretStr

from circuit_host.bundles import pack_bundle
from circuit_host.platform import MasterKey
from circuit_host.server import ServerSettings, create_app
from circuit_host.server.state import ServerState
from circuit_host.toolchain.zig_build import build_circuit, build_tests
from tests.connectors.crm.conftest import fake_ghl, fake_sf  # noqa: F401  (the fake CRMs, on loopback)

ROOT = Path(__file__).resolve().parents[2]
EXAMPLE = ROOT / "examples" / "virtual_lpr"
GENERIC_SECRET = "generic-secret-0123456789"
GHL_LOCATION = "loc-acme-001"


@pytest.fixture(scope="session")
def vlpr_bundles(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """Virtual LPR packed as 1.0.0 and 1.1.0 (same module, different version)."""
    out = tmp_path_factory.mktemp("bundles")
    wasm = build_circuit(EXAMPLE, out / "build")
    tests = build_tests(EXAMPLE, out / "build")  # staging and production deploys run them
    bundles = {}
    for version in ("1.0.0", "1.1.0"):
        folder = out / version
        folder.mkdir()
        manifest = folder / "circuit.toml"
        manifest.write_text(
            (EXAMPLE / "circuit.toml").read_text().replace('version = "1.0.0"', f'version = "{version}"')
        )
        bundles[version] = pack_bundle(manifest, wasm, folder, tests)
    return bundles


@dataclass
class Tenant:
    id: str
    admin_key: str
    ghl_key: Ed25519PrivateKey

    def client(self, server: LiveServer, key: str | None = None) -> httpx.Client:
        return httpx.Client(
            base_url=server.url,
            headers={"authorization": f"Bearer {key or self.admin_key}"},
            timeout=30,
            trust_env=False,
        )


@dataclass
class LiveServer:
    url: str
    state: ServerState

    def tenant(self, name: str) -> Tenant:
        platform = self.state.platform
        tenant = platform.tenants.create_tenant(name)
        _, key = platform.tenants.create_api_key(tenant.id, ["admin"], "test admin")
        ghl_key = Ed25519PrivateKey.generate()
        raw = ghl_key.public_key().public_bytes(Encoding.Raw, PublicFormat.Raw)
        platform.tenants.update_settings(
            tenant.id,
            {
                "ghl_public_key": base64.b64encode(raw).decode(),
                "ghl_location_ids": [GHL_LOCATION],
                "generic_hmac_secret": GENERIC_SECRET,
            },
        )
        return Tenant(tenant.id, key, ghl_key)


def applied(client: httpx.Client, answer: httpx.Response, timeout: float = 20.0) -> list[dict[str, Any]]:
    """The inbox entries of a webhook answered 202, once workers have settled them (applied, or dead):
    what a test asserts instead of sleeping. Each entry's ``execution`` is its execution, when it had one."""
    assert answer.status_code == 202, answer.text
    ids = answer.json()["inbox_ids"]
    deadline = time.monotonic() + timeout
    entries = []
    for entry_id in ids:
        while (entry := client.get(f"/v1/inbox/{entry_id}").json())["state"] == "pending":
            assert time.monotonic() < deadline, f"inbox entry {entry_id} was not applied: {entry}"
            time.sleep(0.02)
        if entry["execution_id"]:
            entry["execution"] = client.get(f"/v1/executions/{entry['execution_id']}").json()
        entries.append(entry)
    return entries


def executions_of(client: httpx.Client, answer: httpx.Response) -> list[dict[str, Any]]:
    """The executions that applied a webhook answered 202 (``applied``), one per entry that ran one."""
    return [e["execution"] for e in applied(client, answer) if "execution" in e]


def gate_verdict(client: httpx.Client, answer: httpx.Response, timeout: float = 300.0) -> dict[str, Any]:
    """The gate run of a deploy answered 202 (staging, production), once it has a verdict."""
    assert answer.status_code == 202, answer.text
    gate: dict[str, Any] = answer.json()
    deadline = time.monotonic() + timeout
    while gate["state"] == "pending":
        assert time.monotonic() < deadline, f"the deploy gate gave no verdict: {gate}"
        time.sleep(0.05)
        gate = client.get(f"/v1/gate-runs/{gate['gate_run']}").json()
    return gate


def deployed(client: httpx.Client, answer: httpx.Response) -> list[dict[str, Any]]:
    """The environment's active circuits after a deploy: at once (dev), or once its gate passed."""
    if answer.status_code == 202:
        gate = gate_verdict(client, answer)
        assert gate["state"] == "passed", gate
        answer = client.get(f"/v1/environments/{gate['env']}/circuits")
    assert answer.status_code == 200, answer.text
    active: list[dict[str, Any]] = answer.json()
    return active


def serve(state: ServerState, settings: ServerSettings) -> Iterator[LiveServer]:
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    server = uvicorn.Server(uvicorn.Config(create_app(settings, state), log_level="warning", lifespan="on"))
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    deadline = time.monotonic() + 20
    while not server.started:
        if time.monotonic() > deadline:
            raise RuntimeError("uvicorn did not start")
        time.sleep(0.02)
    try:
        yield LiveServer(f"http://127.0.0.1:{port}", state)
    finally:
        server.should_exit = True
        thread.join(timeout=10)
        sock.close()


@pytest.fixture
def live(tmp_path: Path) -> Iterator[LiveServer]:
    settings = ServerSettings(data_dir=tmp_path / "data", max_request_bytes=256 * 1024)
    state = ServerState(settings)
    try:
        yield from serve(state, settings)
    finally:
        state.close()


@pytest.fixture
def api_only(tmp_path: Path) -> Iterator[LiveServer]:
    """A server with no job workers of its own: its jobs wait until a test starts a worker (a
    ``Worker`` on ``state.jobs`` in process, or ``circuit worker`` subprocesses)."""
    settings = ServerSettings(data_dir=tmp_path / "data", job_workers=0)
    state = ServerState(settings)
    try:
        yield from serve(state, settings)
    finally:
        state.close()


@pytest.fixture
def fleet(tmp_path: Path, postgres_database: str) -> Iterator[tuple[LiveServer, LiveServer]]:
    """Two servers of one fleet: one PostgreSQL database (the fleet queue: Procrastinate) and one master
    key, each with a data directory of its own."""
    key = SecretStr(MasterKey.generate().encoded())
    states = [
        ServerState(ServerSettings(data_dir=tmp_path / name, db_url=postgres_database, master_key=key))
        for name in ("a", "b")
    ]
    first, second = serve(states[0], states[0].settings), serve(states[1], states[1].settings)
    try:
        yield next(first), next(second)
    finally:
        for generator in (first, second):
            generator.close()
        for state in states:
            state.close()
