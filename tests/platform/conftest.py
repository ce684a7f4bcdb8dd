"""Platform fixtures: every test runs on SQLite and on PostgreSQL.

Each test module and backend gets tables of its own (a unique prefix, dropped afterwards);
each test makes its own tenants, so tests never see each other's rows.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable, Iterator
from typing import Any

import pytest
import wasmtime

from circuit_host.bundles import pack_bytes
from circuit_host.platform import Platform, Tenant
from tests.conftest import TEST_BOX, guest_wat, require_postgres

Database = tuple[str, str]  # (url, table prefix)


@pytest.fixture(scope="module", params=["sqlite", "postgresql"])
def database(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Database]:
    if request.param == "sqlite":
        url = str(tmp_path_factory.mktemp("platform") / "platform.sqlite3")
    else:
        url = require_postgres()
    prefix = f"cs_t{uuid.uuid4().hex[:8]}_"
    first = Platform(url, prefix=prefix, secret_box=TEST_BOX)
    yield url, prefix
    first.database.drop_tables()
    first.close()


@pytest.fixture
def open_platform(database: Database) -> Iterator[Callable[..., Platform]]:
    """Opens more ``Platform`` instances on the test's tables, as other processes would."""
    opened: list[Platform] = []

    def open_one(**kw: Any) -> Platform:
        platform = Platform(database[0], prefix=database[1], **{"secret_box": TEST_BOX, **kw})
        opened.append(platform)
        return platform

    yield open_one
    for platform in opened:
        platform.close()


@pytest.fixture
def platform(open_platform: Callable[..., Platform]) -> Platform:
    return open_platform()


@pytest.fixture
def tenant(platform: Platform) -> Tenant:
    return platform.tenants.create_tenant("Acme Corp")


@pytest.fixture(scope="session")
def echo_wasm() -> bytes:
    return bytes(wasmtime.wat2wasm(guest_wat("echo")))


@pytest.fixture
def make_bundle(echo_wasm: bytes) -> Callable[..., bytes]:
    def make(name: str = "scorer", version: str = "1.0.0", extra: str = "") -> bytes:
        manifest = f'[circuit]\nname = "{name}"\nversion = "{version}"\n{extra}'
        manifest += '[[triggers]]\nobject = "Contact"\noperations = ["after_insert"]\n'
        return pack_bytes(manifest.encode(), echo_wasm)

    return make
