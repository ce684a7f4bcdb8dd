"""The server's routers in process: one test module per router, each the specification of its routes.

Each test module gets one ``ServerState`` on its own data directory (SQLite platform and records
databases), wrapped by the real application from ``create_app`` and driven through Starlette's
``TestClient``: the whole ASGI stack (body-size middleware, lifespan with its housekeeping thread,
problem-details handlers, auth dependencies) runs in this process, with no socket and no server
thread. Each test works in tenants of its own (``acme``, ``globex``: new ids every time), so tests
share nothing but the process's caches, and what one tenant sees of another is itself under test.
A client is entered as a context manager, which runs the lifespan; the lifespan leaves a state it
was given open, so the module fixture closes it.

Tenants are set up the way an operator does it, through the platform, by the same code as the
loopback-server tests (``LiveServer.tenant`` in ``tests/server/conftest.py``); everything a test
then asserts goes through the HTTP API. The deployable bundle is Virtual LPR, built once per
session by ``vlpr_bundles`` there; compiled modules are cached for the session. Webhook bodies
and bundle variants come from the helpers of ``tests/server/test_end_to_end.py``.
"""

from __future__ import annotations

import base64
import json
import time
import uuid
from collections.abc import Iterator
from contextlib import ExitStack
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from fastapi import FastAPI
from fastapi.testclient import TestClient

from circuit_host.server import ServerSettings, create_app
from circuit_host.server.state import ServerState
from circuit_host.webhooks import sign_hmac
from tests.server.conftest import GENERIC_SECRET, LiveServer, deployed
from tests.server.test_end_to_end import HOT_LEAD_FIELDS

ZIP = {"content-type": "application/zip"}
OTHER_SCOPE = {"read": "webhook", "webhook": "read", "deploy": "read", "admin": "deploy"}
"""For each scope a route may require, a scope that does not grant it (only ``admin`` implies others)."""


@dataclass
class Tenant:
    id: str
    admin: TestClient  # authenticated with an admin key
    ghl_key: Ed25519PrivateKey  # GoHighLevel's signing key, as this tenant has it configured
    server: Server

    def key(self, *scopes: str) -> str:
        """A new API key of this tenant with ``scopes``."""
        _, plaintext = self.server.state.platform.tenants.create_api_key(self.id, list(scopes), "test")
        return plaintext

    def client(self, key: str | None) -> TestClient:
        """A client sending ``key`` (none at all when None)."""
        return self.server.client({"authorization": f"Bearer {key}"} if key is not None else {})

    def configure(self, **settings: Any) -> None:
        self.server.state.platform.tenants.update_settings(self.id, settings)


@dataclass
class Server:
    app: FastAPI
    state: ServerState
    clients: ExitStack

    def client(self, headers: dict[str, str]) -> TestClient:
        return self.clients.enter_context(TestClient(self.app, headers=headers))

    def tenant(self, name: str) -> Tenant:
        """A tenant with an admin key, GoHighLevel and generic webhook verification configured.

        Made the way the loopback-server tests make theirs (only their ``state`` is used), so both
        suites follow the platform's API from one place.
        """
        made = LiveServer(url="http://testserver", state=self.state).tenant(name)
        tenant = Tenant(made.id, self.client({"authorization": f"Bearer {made.admin_key}"}), made.ghl_key, self)
        tenant.configure(ghl_custom_fields=HOT_LEAD_FIELDS)
        return tenant


@pytest.fixture(scope="session")
def module_cache(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("modules")


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory, module_cache: Path) -> Iterator[tuple[FastAPI, ServerState]]:
    data = tmp_path_factory.mktemp("server") / "data"
    settings = ServerSettings(
        data_dir=data,
        cache_dir=module_cache,
        max_request_bytes=256 * 1024,
        inbox_max_attempts=3,  # a failing webhook is dead-lettered in a fraction of a second
        inbox_backoff_s=0.05,
    )
    state = ServerState(settings)
    try:
        yield create_app(settings, state), state
    finally:
        state.close()


@pytest.fixture
def server(served: tuple[FastAPI, ServerState]) -> Iterator[Server]:
    """The module's server; the test's clients are closed when it ends."""
    app, state = served
    with ExitStack() as clients:
        yield Server(app, state, clients)


@pytest.fixture
def acme(server: Server) -> Tenant:
    return server.tenant("acme")


@pytest.fixture
def globex(server: Server) -> Tenant:
    return server.tenant("globex")


# --- what the tests send -----------------------------------------------------------------------


def problem(response: httpx.Response, status: int) -> dict[str, Any]:
    """The RFC 9457 problem details of an error response, after checking its status and media type."""
    assert response.status_code == status, response.text
    assert response.headers["content-type"] == "application/problem+json", response.headers
    body: dict[str, Any] = response.json()
    assert body["status"] == status and body["title"], body
    return body


def upload(client: httpx.Client, bundle: Path) -> dict[str, Any]:
    answer = client.post("/v1/bundles", content=bundle.read_bytes(), headers=ZIP)
    assert answer.status_code == 201, answer.text
    info: dict[str, Any] = answer.json()
    return info


def deploy(client: httpx.Client, bundle: Path, env: str = "dev") -> list[dict[str, Any]]:
    """Upload and deploy; ``dev`` by default, where no deploy gate runs the bundle's tests."""
    info = upload(client, bundle)
    answer = client.post(
        f"/v1/environments/{env}/deployments", json={"circuit": info["name"], "version": info["version"]}
    )
    return deployed(client, answer)  # staging, production: after the deploy gate's job


def query(client: httpx.Client, soql: str, env: str = "dev") -> list[dict[str, Any]]:
    answer = client.get("/v1/query", params={"soql": soql, "env": env})
    assert answer.status_code == 200, answer.text
    records: list[dict[str, Any]] = answer.json()["records"]
    return records


def ghl_signed(key: Ed25519PrivateKey, payload: dict[str, Any]) -> tuple[bytes, dict[str, str]]:
    """The body and headers of a GoHighLevel webhook signed with ``key`` (``X-GHL-Signature``)."""
    raw = json.dumps(payload).encode()
    signature = base64.b64encode(key.sign(raw)).decode()
    return raw, {"content-type": "application/json", "x-ghl-signature": signature}


def generic_event(*records: dict[str, Any], event_id: str | None = None, operation: str = "insert") -> dict[str, Any]:
    return {
        "id": event_id or str(uuid.uuid4()),
        "object": "Contact",
        "operation": operation,
        "records": list(records),
        "occurred_at": datetime.now(UTC).isoformat(),
    }


def generic_signed(payload: dict[str, Any], **signing: Any) -> tuple[bytes, dict[str, str]]:
    """A JSON body and headers signed with ``X-Circuit-Signature`` (generic, Salesforce CDC relays)."""
    return circuit_signed(json.dumps(payload).encode(), **signing)


def circuit_signed(
    raw: bytes, secret: str = GENERIC_SECRET, at: float | None = None, content_type: str = "application/json"
) -> tuple[bytes, dict[str, str]]:
    signature = sign_hmac(raw, secret, int(time.time() if at is None else at))
    return raw, {"content-type": content_type, "x-circuit-signature": signature}
