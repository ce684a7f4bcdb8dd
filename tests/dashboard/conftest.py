"""A real server and a real browser: uvicorn on loopback serving the dashboard, headless Chromium
(Debian's ``chromium``) driven by Playwright, one of each per test module.

Like PostgreSQL, the browser is optional on a developer's machine: without Chromium these tests
skip, except under ``CIRCUIT_REQUIRE_BROWSER=1`` (``.ci/run`` installs it and sets it), where a
missing browser fails them.
"""

from __future__ import annotations

import os
import shutil
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

from circuit_host.server import ServerSettings, create_app
from circuit_host.server.state import ServerState
from tests.server.conftest import vlpr_bundles  # noqa: F401  (Virtual LPR 1.0.0 and 1.1.0, built once)

CHROMIUM = os.environ.get("CIRCUIT_TEST_CHROMIUM", "/usr/bin/chromium")
REQUIRE_BROWSER = os.environ.get("CIRCUIT_REQUIRE_BROWSER") == "1"
# Where screenshots go: a temporary folder, or CIRCUIT_SCREENSHOTS (docs/screenshots refreshes the README's).
SCREENSHOTS = os.environ.get("CIRCUIT_SCREENSHOTS")
# A grade-A lead: Virtual LPR updates it and inserts a Task (two DML statements).
HOT_LEAD = {
    "LastName": "Hot",
    "Title": "CEO",
    "Email": "ceo@example.com",
    "Company_Size__c": 250,
    "Website_Visits__c": 12,
    "Emails_Opened__c": 6,
    "Called_Business__c": True,
    "LeadSource": "Referral",
}


def chromium_problem() -> str | None:
    """Why the browser tests cannot run here, or None."""
    if not (Path(CHROMIUM).is_file() or shutil.which(CHROMIUM)):
        return f"no Chromium at {CHROMIUM} (apt-get install chromium)"
    try:
        import playwright.sync_api  # noqa: F401
    except ImportError:
        return "the playwright package is not installed"
    return None


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    problem = chromium_problem()
    if problem is not None:
        if REQUIRE_BROWSER:
            pytest.fail(f"{problem} (CIRCUIT_REQUIRE_BROWSER=1)")
        pytest.skip(problem)
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        launched = playwright.chromium.launch(executable_path=CHROMIUM, headless=True, args=["--no-sandbox"])
        try:
            yield launched
        finally:
            launched.close()


@dataclass
class Dashboard:
    """The served dashboard and one tenant with Virtual LPR 1.0.0 then 1.1.0 active in dev."""

    url: str
    state: ServerState
    tenant_id: str
    admin_key: str
    read_key: str

    def api(self, key: str | None = None) -> httpx.Client:
        headers = {"authorization": f"Bearer {key or self.admin_key}"}
        return httpx.Client(base_url=self.url, headers=headers, timeout=30, trust_env=False)

    def write(self, record: dict[str, Any], env: str = "dev") -> dict[str, Any]:
        """Insert a Contact through the records API: one execution of the environment's triggers."""
        with self.api() as client:
            response = client.post("/v1/records/Contact", params={"env": env}, json={"records": [record]})
        assert response.status_code == 200, response.text
        execution: dict[str, Any] = response.json()["execution"]
        return execution


def serve_app(state: ServerState, settings: ServerSettings) -> Iterator[str]:
    """uvicorn on a free loopback port in a thread; open streams get 2 s to end at shutdown."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    config = uvicorn.Config(create_app(settings, state), log_level="warning", timeout_graceful_shutdown=2)
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    deadline = time.monotonic() + 20
    while not server.started:
        assert time.monotonic() < deadline, "uvicorn did not start"
        time.sleep(0.02)
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        thread.join(timeout=10)
        sock.close()


@pytest.fixture(scope="module")
def dashboard(tmp_path_factory: pytest.TempPathFactory, vlpr_bundles: dict[str, Path]) -> Iterator[Dashboard]:  # noqa: F811
    settings = ServerSettings(data_dir=tmp_path_factory.mktemp("dashboard") / "data")
    state = ServerState(settings)
    try:
        tenant = state.platform.tenants.create_tenant("acme")
        _, admin_key = state.platform.tenants.create_api_key(tenant.id, ["admin"], "dashboard admin")
        _, read_key = state.platform.tenants.create_api_key(tenant.id, ["read"], "dashboard reader")
        # Two DML statements at most: a hot lead's Task insert is one over, so it ends limit_exceeded.
        state.platform.tenants.update_settings(tenant.id, {"max_limits": {"dml_statements": 1}})
        for url in serve_app(state, settings):
            served = Dashboard(url, state, tenant.id, admin_key, read_key)
            with served.api() as client:
                for version in ("1.0.0", "1.1.0"):
                    bundle = vlpr_bundles[version].read_bytes()
                    uploaded = client.post("/v1/bundles", content=bundle, headers={"content-type": "application/zip"})
                    assert uploaded.status_code == 201, uploaded.text
                    wanted = {"circuit": "virtual_lpr", "version": version}
                    deployed = client.post("/v1/environments/dev/deployments", json=wanted)
                    assert deployed.status_code == 200, deployed.text
            yield served
    finally:
        state.close()


@pytest.fixture
def page(browser: Any, dashboard: Dashboard) -> Iterator[Any]:
    """A fresh tab (its own session storage) that fails the test on any script error."""
    context = browser.new_context(viewport={"width": 1280, "height": 900})
    tab = context.new_page()
    errors: list[str] = []
    tab.on("pageerror", lambda error: errors.append(str(error)))
    tab.set_default_timeout(5000)
    try:
        yield tab
    finally:
        context.close()
    assert errors == [], errors


def sign_in(page: Any, dashboard: Dashboard, key: str | None = None, where: str = "") -> None:
    page.goto(f"{dashboard.url}/dashboard/#/{where}")
    page.fill("#api-key", key or dashboard.admin_key)
    page.click("#sign-in-form button[type=submit]")
    page.wait_for_selector("#who-tenant")


@pytest.fixture(scope="session")
def screenshots(tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = Path(SCREENSHOTS) if SCREENSHOTS else tmp_path_factory.mktemp("screenshots")
    folder.mkdir(parents=True, exist_ok=True)
    return folder


def screenshot(page: Any, folder: Path, name: str) -> Path:
    path = folder / name
    page.screenshot(path=str(path), full_page=True)
    return path
