"""A database made before migrations is adopted and served; a newer one is refused; upgrades are one-time.

``fixtures/data-v0`` is a ``circuit serve`` data directory written by the code of commit
ddfdd8c (see ``fixtures/make_data_v0.py``): tenant ``fixture`` with an admin key, a deployed
bundle, a gate run, an execution, a webhook token, a remembered webhook id and record.
"""

from __future__ import annotations

import functools
import json
import shutil
import subprocess
import sys
import threading
import uuid
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
import sqlalchemy as sa
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext

from circuit_host.circuitdb import open_store
from circuit_host.circuitdb.tables import schema_table
from circuit_host.connectors.crm.outbox import Outbox
from circuit_host.migrations import (
    SchemaTooNew,
    batch_runs,
    circuitdb_definitions,
    control_plane,
    crm_outbox,
    current_revisions,
    upgrade,
    webhook_inbox,
)
from circuit_host.migrations.__main__ import main as migrations_command
from circuit_host.migrations.versions.control_plane.r0001_baseline import tables as baseline_tables
from circuit_host.platform import Platform
from circuit_host.server import ServerSettings
from circuit_host.server.master_key import open_platform
from circuit_host.storage_engine import make_engine
from tests.cli.test_serve import Served
from tests.conftest import TEST_BOX, require_postgres

DATA_V0 = Path(__file__).parent / "fixtures" / "data-v0"
FIXTURE = json.loads((DATA_V0 / "fixture.json").read_text())
HEADS = {"control_plane": {"0005"}, "circuitdb": {"0003"}, "outbox": {"0002"}, "inbox": {"0001"}, "batches": {"0001"}}
"""The newest revision of each schema (``MigratedSchema.name``)."""


@pytest.fixture
def data_dir(tmp_path: Path) -> Path:
    """A copy of the pre-migration data directory (tests change it)."""
    target = tmp_path / "data"
    shutil.copytree(DATA_V0, target)
    return target


@pytest.fixture
def postgres_v0(data_dir: Path) -> Iterator[tuple[str, str]]:
    """The fixture's control plane copied into PostgreSQL, as the old code would have left it there."""
    url = require_postgres()
    prefix = f"cs_m{uuid.uuid4().hex[:8]}_"
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


def _defined_in(tables: set[str], name: str | None, kind: str, _parent: object) -> bool:
    """Compare only the tables of one metadata (the database holds others)."""
    return kind != "table" or name in tables


def assert_fixture_served(platform: Platform) -> None:
    key = platform.tenants.authenticate(FIXTURE["admin_key"])
    assert key is not None and key.tenant_id == "fixture" and key.allows("deploy")
    assert [t.id for t in platform.tenants.list_tenants()] == ["fixture"]
    assert platform.tenants.get_settings("fixture").coverage_threshold == 0
    assert platform.tenants.resolve_webhook_token(FIXTURE["webhook_token"]) == ("fixture", "production")
    [execution] = platform.executions.list_executions("fixture", include_log=True)
    assert (execution.id, execution.status, execution.debug_log) == ("exec-fixture-1", "ok", "fixture log line")
    assert [(c.name, c.version) for c in platform.deployments.active_circuits("fixture", "production")] == [
        ("scorer", "1.0.0")
    ]
    assert platform.bundles.bundle_wasm("fixture", platform.bundles.list_bundles("fixture")[0].sha256)
    assert [g.passed for g in platform.deployments.gate_runs("fixture")] == [True]
    assert [a.action for a in platform.audit.audit_log("fixture")] == ["deploy", "upload"]
    assert not platform.webhooks.remember_webhook_id("fixture", "ghl", "hook-1", 60)  # already delivered
    assert platform.webhooks.last_seen("fixture", "production", "Contact", ["003000000000001"])


def test_a_control_plane_from_before_migrations_is_adopted_and_keeps_its_data(data_dir: Path) -> None:
    engine = make_engine(data_dir / "platform.sqlite3")
    assert current_revisions(engine, control_plane()) == set()
    with Platform(data_dir / "platform.sqlite3", secret_box=TEST_BOX) as platform:
        assert_fixture_served(platform)
        platform.deployments.deploy("fixture", "staging", "scorer", "1.0.0", "after upgrade")  # still writable
    assert current_revisions(engine, control_plane()) == HEADS["control_plane"]
    engine.dispose()


def test_the_same_database_on_postgresql_is_adopted_too(postgres_v0: tuple[str, str]) -> None:
    url, prefix = postgres_v0
    with Platform(url, prefix=prefix, secret_box=TEST_BOX) as platform:
        assert_fixture_served(platform)
        assert current_revisions(platform.database.engine, control_plane(prefix)) == HEADS["control_plane"]


def test_processes_opening_an_old_database_at_once_upgrade_it_once(postgres_v0: tuple[str, str]) -> None:
    url, prefix = postgres_v0
    opened: list[Platform] = []
    errors: list[BaseException] = []

    def open_one() -> None:
        try:
            opened.append(Platform(url, prefix=prefix, secret_box=TEST_BOX))
        except BaseException as exc:  # pragma: no cover - reported below
            errors.append(exc)

    threads = [threading.Thread(target=open_one) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    try:
        assert errors == []
        engine = opened[0].database.engine
        with engine.connect() as conn:
            versions = conn.exec_driver_sql(f'SELECT * FROM "{control_plane(prefix).version_table}"').all()
        assert [tuple(v) for v in versions] == [(v,) for v in HEADS["control_plane"]]
        assert_fixture_served(opened[-1])
    finally:
        for platform in opened:
            platform.close()


def test_records_and_their_definitions_from_before_migrations_are_kept(data_dir: Path) -> None:
    with open_store(data_dir / "records.sqlite3", tenant="fixture:production") as records:
        assert current_revisions(records.engine, circuitdb_definitions()) == HEADS["circuitdb"]
        with records.begin() as tx:
            found = tx.query("SELECT LastName, Email FROM Contact", {}, 10).records
    assert [(r["LastName"], r["Email"]) for r in found] == [("Fixture", "fixture@example.com")]


def test_a_database_from_a_newer_circuit_script_is_refused(tmp_path: Path) -> None:
    Platform(tmp_path / "platform.sqlite3", secret_box=TEST_BOX).close()
    engine = make_engine(tmp_path / "platform.sqlite3")
    with engine.connect() as conn:
        conn.exec_driver_sql(f"UPDATE {control_plane().version_table} SET version_num = 'f00d'")
    engine.dispose()
    with pytest.raises(SchemaTooNew, match=r"at revision f00d, which this Circuit Script does not know"):
        Platform(tmp_path / "platform.sqlite3", secret_box=TEST_BOX)


def test_a_fresh_database_is_created_at_the_newest_revision(tmp_path: Path) -> None:
    engine = make_engine(tmp_path / "fresh.sqlite3")
    for schema in (
        control_plane("cs_"),
        circuitdb_definitions(),
        crm_outbox("crm_"),
        webhook_inbox("cs_"),
        batch_runs("cs_"),
    ):
        upgrade(engine, schema)
        upgrade(engine, schema)  # a second start finds nothing to do
        assert current_revisions(engine, schema) == HEADS[schema.name]
    names = set(sa.inspect(engine).get_table_names())
    expected = {"cs_tenants", "cs_gate_runs", "circuitdb_schema", "circuitdb_receipts", "crm_outbox", "crm_id_map"}
    assert expected | {"cs_webhook_inbox", "circuitdb_job_outbox"} <= names
    engine.dispose()


def test_an_outbox_from_before_migrations_is_adopted(tmp_path: Path) -> None:
    path = tmp_path / "outbox.sqlite3"
    engine = make_engine(path)
    with engine.connect() as conn:  # the outbox tables as the old code's create_all left them
        conn.exec_driver_sql("CREATE TABLE crm_outbox (id INTEGER PRIMARY KEY, tenant VARCHAR(255))")
        conn.exec_driver_sql("INSERT INTO crm_outbox (id, tenant) VALUES (7, 'acme')")
    outbox = Outbox(path)
    try:
        assert current_revisions(engine, crm_outbox()) == HEADS["outbox"]
        with engine.connect() as conn:
            assert conn.exec_driver_sql("SELECT id, tenant FROM crm_outbox").all() == [(7, "acme")]
            assert sa.inspect(conn).has_table("crm_id_map")
    finally:
        outbox.close()
        engine.dispose()


def test_circuit_serve_upgrades_an_old_data_directory_and_serves_it(data_dir: Path) -> None:
    served = Served(data_dir)
    try:
        assert served.key == FIXTURE["admin_key"]  # the existing credentials, not a new tenant
        headers = {"authorization": f"Bearer {served.key}"}
        with httpx.Client(base_url=served.url, headers=headers, trust_env=False) as client:
            circuits = client.get("/v1/environments/production/circuits")
            assert circuits.status_code == 200, circuits.text
            assert [(c["name"], c["version"]) for c in circuits.json()] == [("scorer", "1.0.0")]
            executions = client.get("/v1/executions")
            assert executions.status_code == 200, executions.text
            assert "exec-fixture-1" in executions.text
    finally:
        served.stop()
    engine = make_engine(data_dir / "platform.sqlite3")
    assert current_revisions(engine, control_plane()) == HEADS["control_plane"]
    engine.dispose()


def test_the_command_line_upgrades_on_start_and_refuses_a_newer_database(data_dir: Path) -> None:
    created = subprocess.run(
        [sys.executable, "-m", "circuit_host.cli", "tenant", "create", "Second", "--data-dir", str(data_dir)],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert created.returncode == 0, created.stderr
    with open_platform(ServerSettings(data_dir=data_dir)) as platform:  # the key file the command made
        assert sorted(t.name for t in platform.tenants.list_tenants()) == ["Fixture Corp", "Second"]
        with platform.database.engine.connect() as conn:
            conn.exec_driver_sql(f"UPDATE {control_plane().version_table} SET version_num = '9999'")
    refused = subprocess.run(
        [sys.executable, "-m", "circuit_host.cli", "tenant", "create", "Third", "--data-dir", str(data_dir)],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert refused.returncode == 2
    assert "at revision 9999, which this Circuit Script does not know" in refused.stderr


@pytest.mark.parametrize("backend", ["sqlite", "postgresql"])
def test_the_migrations_build_exactly_the_tables_the_code_uses(backend: str, tmp_path: Path) -> None:
    """A change to a table definition without a revision (or the reverse) fails here."""
    url = str(tmp_path / "head.sqlite3") if backend == "sqlite" else require_postgres()
    prefix = f"m{uuid.uuid4().hex[:8]}_"
    engine = make_engine(url)
    outbox = Outbox(url, table_prefix=f"{prefix}crm_")
    platform = Platform(url, prefix=f"{prefix}cs_", secret_box=TEST_BOX)
    try:
        upgrade(engine, circuitdb_definitions())
        for metadata in (platform.database.tables.metadata, outbox.metadata, schema_table.metadata):
            with engine.connect() as conn:
                ours = functools.partial(_defined_in, set(metadata.tables))
                context = MigrationContext.configure(conn, opts={"compare_type": True, "include_name": ours})
                assert compare_metadata(context, metadata) == []
    finally:
        platform.database.drop_tables()
        platform.close()
        outbox.drop()
        outbox.close()
        engine.dispose()


def test_an_operator_can_migrate_and_inspect_a_database_by_hand(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    database = str(tmp_path / "platform.sqlite3")
    assert migrations_command(["current", "control_plane", "--url", database]) == 0
    assert capsys.readouterr().out == "(none)\n"
    assert migrations_command(["upgrade", "control_plane", "--url", database, "--prefix", "ops_"]) == 0
    assert capsys.readouterr().out == "".join(f"{r}\n" for r in HEADS["control_plane"])
    engine = make_engine(database)
    assert current_revisions(engine, control_plane("ops_")) == HEADS["control_plane"]
    assert "ops_tenants" in sa.inspect(engine).get_table_names()
    engine.dispose()
