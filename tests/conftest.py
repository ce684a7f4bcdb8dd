"""Shared fixtures: a real runtime, real SQLite files, real loopback HTTP servers."""

from __future__ import annotations

import functools
import os
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest
import sqlalchemy as sa

from circuit_host.circuitdb import CircuitDB, open_store
from circuit_host.connectors.callout_destinations import parse_networks
from circuit_host.connectors.http_client import HttpConnector
from circuit_host.execution.executions import Executor
from circuit_host.platform import MasterKey, SecretBox
from circuit_host.sandbox.runtime import Runtime

from .private_postgres import PrivateCluster, find_binaries

GUESTS = Path(__file__).parent / "sandbox" / "guests"
POSTGRES_URL = os.environ.get("CIRCUIT_TEST_POSTGRES_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/test")
REQUIRE_POSTGRES = os.environ.get("CIRCUIT_REQUIRE_POSTGRES") == "1"
# Callouts refuse loopback by default; the suite's servers listen there, so its connectors are
# configured the way an operator allows a private network (callout_allowed_networks).
LOOPBACK_NETWORKS = parse_networks(["127.0.0.0/8", "::1/128"])
# The master key the suite's platform stores encrypt their secrets with (Platform(url, secret_box=TEST_BOX)).
TEST_BOX = SecretBox(MasterKey(bytes(range(32)), "the test suite"))


@functools.cache
def _postgres_problem() -> str | None:
    """Why PostgreSQL is unusable, or None. Asked once per test session."""
    try:
        import sqlalchemy

        engine = sqlalchemy.create_engine(POSTGRES_URL, connect_args={"connect_timeout": 3})
        with engine.connect() as connection:
            connection.execute(sqlalchemy.text("SELECT 1"))
        engine.dispose()
    except Exception as exc:
        return f"{type(exc).__name__}: {exc}".splitlines()[0]
    return None


def require_postgres() -> str:
    """The PostgreSQL URL for tests; skips without a server, or fails when CI requires one."""
    problem = _postgres_problem()
    if problem is not None:
        message = f"PostgreSQL at {POSTGRES_URL} is unavailable: {problem}"
        if REQUIRE_POSTGRES:
            pytest.fail(f"{message} (CIRCUIT_REQUIRE_POSTGRES=1)")
        pytest.skip(message)
    return POSTGRES_URL


def guest_wat(name: str) -> str:
    """A test guest's WAT: files starting with ``(module`` stand alone, others get the prelude."""
    body = (GUESTS / f"{name}.wat").read_text()
    if body.lstrip().startswith("(module"):
        return body
    return f"(module\n{(GUESTS / '_prelude.wat').read_text()}\n{body}\n)"


@pytest.fixture(scope="session")
def runtime(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Runtime]:
    with Runtime(cache_dir=tmp_path_factory.mktemp("module-cache")) as rt:
        yield rt


@pytest.fixture
def records(tmp_path: Path) -> Iterator[CircuitDB]:
    """A CircuitDB on a SQLite file of the test's own."""
    store = open_store(tmp_path / "records.db")
    yield store
    store.close()


@pytest.fixture(params=["sqlite", "postgresql"])
def any_records(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[CircuitDB]:
    """A CircuitDB on each backend, in a tenant of the test's own that is dropped afterwards."""
    target = str(tmp_path / "records.db") if request.param == "sqlite" else require_postgres()
    store = open_store(target, tenant=f"test-{uuid.uuid4().hex[:12]}")
    yield store
    store.drop_tenant()


@pytest.fixture
def executor(runtime: Runtime, records: CircuitDB) -> Iterator[Executor]:
    http = HttpConnector(allowed_networks=LOOPBACK_NETWORKS)  # the loopback servers below, as an operator would
    yield Executor(runtime, records, http)
    http.close()


@pytest.fixture
def load_guest(runtime: Runtime) -> Callable[[str], object]:
    import wasmtime

    def load(name: str) -> object:
        return runtime.load(wasmtime.wat2wasm(guest_wat(name)))

    return load


Handler = Callable[[BaseHTTPRequestHandler], None]


class LoopbackServer:
    """A real HTTP server on 127.0.0.1 whose behaviour a test sets per path."""

    def __init__(self) -> None:
        self.routes: dict[str, Handler] = {}
        self.requests: list[tuple[str, str, bytes]] = []
        server = self

        class _Handler(BaseHTTPRequestHandler):
            def _handle(self) -> None:
                length = int(self.headers.get("content-length") or 0)
                body = self.rfile.read(length) if length else b""
                server.requests.append((self.command, self.path, body))
                self.body = body  # already read: routes use this, not rfile
                route = server.routes.get(self.path.split("?")[0])
                if route is None:
                    self.send_response(404)
                    self.send_header("content-length", "0")
                    self.end_headers()
                    return
                route(self)

            do_GET = do_POST = do_PUT = do_PATCH = do_DELETE = do_HEAD = _handle

            def log_message(self, *args: object) -> None:
                pass

        self._httpd = ThreadingHTTPServer(("127.0.0.1", 0), _Handler)
        self._httpd.daemon_threads = True
        self.port = self._httpd.server_address[1]
        self.base = f"http://127.0.0.1:{self.port}"
        self._thread = threading.Thread(target=self._httpd.serve_forever, daemon=True)
        self._thread.start()

    def close(self) -> None:
        self._httpd.shutdown()
        self._httpd.server_close()


@pytest.fixture
def loopback() -> Iterator[LoopbackServer]:
    server = LoopbackServer()
    yield server
    server.close()


def reply(status: int, body: bytes, content_type: str = "application/octet-stream") -> Handler:
    def handler(request: BaseHTTPRequestHandler) -> None:
        request.send_response(status)
        request.send_header("content-type", content_type)
        request.send_header("content-length", str(len(body)))
        request.end_headers()
        request.wfile.write(body)

    return handler


def slow_reply(seconds: float) -> Handler:
    """A route that answers only after ``seconds``: for timeout tests."""

    def handler(request: BaseHTTPRequestHandler) -> None:
        time.sleep(seconds)
        reply(200, b"late")(request)

    return handler


@pytest.fixture
def postgres_database() -> Iterator[str]:
    """The URL of a fresh PostgreSQL database, dropped afterwards: Procrastinate's tables have fixed
    names, and a server refuses to start beside tenants sealed under another master key."""
    server = sa.engine.make_url(require_postgres())
    name = f"circuit_test_{uuid.uuid4().hex[:12]}"
    admin = sa.create_engine(server, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.exec_driver_sql(f'CREATE DATABASE "{name}"')
    try:
        yield server.set(database=name).render_as_string(hide_password=False)
    finally:
        with admin.connect() as conn:
            conn.exec_driver_sql(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        admin.dispose()


@pytest.fixture
def private_postgres() -> Iterator[PrivateCluster]:
    """A running PostgreSQL cluster of this test's own (``tests/private_postgres.py``), for tests
    that stop or restart the server; skips without the binaries, or fails when CI requires them."""
    binaries = find_binaries()
    if isinstance(binaries, str):
        message = f"cannot run a private PostgreSQL cluster: {binaries}"
        if REQUIRE_POSTGRES:
            pytest.fail(f"{message} (CIRCUIT_REQUIRE_POSTGRES=1)")
        pytest.skip(message)
    cluster = PrivateCluster(binaries)
    try:
        cluster.start()
        yield cluster
    finally:
        cluster.close()
