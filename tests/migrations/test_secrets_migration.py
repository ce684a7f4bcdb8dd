"""A data directory with plaintext secrets is encrypted, hashed and scrubbed when it is opened.

``fixtures/data-v1`` was written by the code before encryption at rest (commit 29c02ff, see
``fixtures/make_data_v1.py``) and copied while the store was open, so its write-ahead log still
holds every page: an HMAC secret (and its earlier value), a named credential's header and a
webhook URL token, all in plaintext.
"""

from __future__ import annotations

import json
import shutil
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
import sqlalchemy as sa
import structlog

from circuit_host.migrations import control_plane, current_revisions
from circuit_host.migrations.versions.control_plane.r0001_baseline import tables as baseline_tables
from circuit_host.platform import Platform
from circuit_host.server import ServerSettings
from circuit_host.server.master_key import open_platform
from circuit_host.storage_engine import make_engine
from circuit_host.webhooks.signing import CircuitSecretSettings
from tests.conftest import TEST_BOX, require_postgres
from tests.migrations.test_migrations import HEADS

DATA_V1 = Path(__file__).parent / "fixtures" / "data-v1"
FIXTURE = json.loads((DATA_V1 / "fixture.json").read_text())
PLAINTEXTS = [*FIXTURE["secrets"].values(), FIXTURE["webhook_token"]]


@pytest.fixture(autouse=True)
def default_logging() -> Iterator[None]:
    """These tests read the host's warnings with ``capture_logs``: start from structlog's defaults
    whatever an earlier test in this process configured, and put that back afterwards."""
    before = structlog.get_config()
    structlog.reset_defaults()
    yield
    structlog.configure(**before)


@pytest.fixture
def data_dir(tmp_path: Path) -> Path:
    target = tmp_path / "data"
    shutil.copytree(DATA_V1, target)
    return target


def found_in_files(directory: Path) -> dict[str, list[str]]:
    """Which of the fixture's plaintexts occur, byte for byte, in which files of ``directory``."""
    found: dict[str, list[str]] = {}
    for path in sorted(p for p in directory.rglob("*") if p.is_file() and p.name != "fixture.json"):
        data = path.read_bytes()
        for secret in PLAINTEXTS:
            if secret.encode() in data and path.name != "admin-credentials.json":
                found.setdefault(path.name, []).append(secret)
    return found


def assert_secrets_served(platform: Platform) -> None:
    settings = platform.tenants.get_settings("fixture")
    hmac = settings.section(CircuitSecretSettings).generic_hmac_secret
    assert hmac is not None and hmac.get_secret_value() == FIXTURE["secrets"]["hmac_secret"]
    headers = settings.named_credentials["census"].secret_headers()
    assert headers == {"Authorization": FIXTURE["secrets"]["header_secret"]}
    assert platform.tenants.resolve_webhook_token(FIXTURE["webhook_token"]) == ("fixture", "production")
    assert platform.tenants.authenticate(FIXTURE["admin_key"]) is not None


def test_the_fixture_holds_its_secrets_in_plaintext(data_dir: Path) -> None:
    """The premise of the next test: without it, finding nothing would prove nothing."""
    assert set(found_in_files(data_dir)["platform.sqlite3-wal"]) == set(PLAINTEXTS)


def test_plaintext_secrets_are_encrypted_tokens_hashed_and_the_old_bytes_scrubbed(data_dir: Path) -> None:
    settings = ServerSettings(data_dir=data_dir)
    with structlog.testing.capture_logs() as logs, open_platform(settings) as platform:
        assert_secrets_served(platform)
        assert platform.tenants.key_ids_in_use() == {platform.tenants.secret_box.current.id}
    assert found_in_files(data_dir) == {}
    engine = make_engine(data_dir / "platform.sqlite3")
    assert current_revisions(engine, control_plane()) == HEADS["control_plane"]
    engine.dispose()
    assert any(e["event"] == "made a new master key; back it up apart from the database" for e in logs)
    with open_platform(settings) as platform:  # a second start reads what the first wrote
        assert_secrets_served(platform)
    assert found_in_files(data_dir) == {}


def test_an_old_data_directory_is_made_private_on_start(data_dir: Path) -> None:
    (data_dir / "platform.sqlite3").chmod(0o644)
    data_dir.chmod(0o755)
    with structlog.testing.capture_logs() as logs, open_platform(ServerSettings(data_dir=data_dir)):
        pass
    assert oct(data_dir.stat().st_mode & 0o777) == "0o700"
    for name in ("platform.sqlite3", "master.key"):
        assert oct((data_dir / name).stat().st_mode & 0o777) == "0o600", name
    tightened = {Path(e["path"]).name for e in logs if e["event"] == "tightened file mode"}
    assert {"data", "platform.sqlite3"} <= tightened


@pytest.fixture
def postgres_v1(data_dir: Path) -> Iterator[tuple[str, str]]:
    """The fixture's control plane copied into PostgreSQL, plaintext and all, as the old code left it there."""
    url = require_postgres()
    prefix = f"cs_s{uuid.uuid4().hex[:8]}_"
    source = make_engine(data_dir / "platform.sqlite3")
    target = make_engine(url)
    old, new = baseline_tables("cs_"), baseline_tables(prefix)
    try:
        with source.connect() as read, target.connect() as write:
            for table_old, table_new in zip(old, new, strict=True):
                table_new.create(write)
                rows = [dict(r._mapping) for r in read.execute(sa.select(table_old))]
                if rows:
                    write.execute(table_new.insert(), rows)
        yield url, prefix
    finally:
        source.dispose()
        with target.connect() as conn:
            for table in reversed(new):
                conn.exec_driver_sql(f'DROP TABLE IF EXISTS "{table.name}"')
            conn.exec_driver_sql(f'DROP TABLE IF EXISTS "{control_plane(prefix).version_table}"')
        target.dispose()


def test_on_postgresql_no_column_holds_a_plaintext_secret_after_opening(postgres_v1: tuple[str, str]) -> None:
    url, prefix = postgres_v1

    def every_stored_value() -> str:
        engine = make_engine(url)
        with engine.connect() as conn:
            text = "\n".join(
                str(value)
                for name in ("tenants", "webhook_tokens", "api_keys", "audit")
                for row in conn.exec_driver_sql(f'SELECT * FROM "{prefix}{name}"')
                for value in row
            )
        engine.dispose()
        return text

    live = [s for s in PLAINTEXTS if s != FIXTURE["secrets"]["old_hmac_secret"]]  # the overwritten one is no row's
    assert all(secret in every_stored_value() for secret in live)  # the premise
    with Platform(url, prefix=prefix, secret_box=TEST_BOX) as platform:
        assert_secrets_served(platform)
    values = every_stored_value()
    assert [secret for secret in PLAINTEXTS if secret in values] == []
