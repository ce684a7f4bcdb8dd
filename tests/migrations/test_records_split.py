"""A data directory whose tenants shared one records file gets a file per tenant environment on start.

``fixtures/records-shared`` was written by the code of commit 29c02ff, the last with one shared
``records.sqlite3`` (see ``fixtures/make_records_shared.py``): tenants ``alpha`` (production with
a custom object, a custom field and a deleted contact; dev) and ``beta`` (production), and the
tables of a tenant the platform does not know.
"""

from __future__ import annotations

import json
import shutil
import sqlite3
import stat
from collections.abc import Iterator
from pathlib import Path

import pytest

from circuit_host.circuitdb.store import copy_tenant
from circuit_host.circuitdb.tables import tenant_prefix
from circuit_host.connectors.records import DmlOp
from circuit_host.server import ServerSettings
from circuit_host.server.records_files import SHARED_RECORDS, SPLIT_BACKUP
from circuit_host.server.state import ServerState

FIXTURE = Path(__file__).parent / "fixtures" / "records-shared"
IDS = json.loads((FIXTURE / "fixture.json").read_text())
MOVED = [("alpha", "dev"), ("alpha", "production"), ("beta", "production")]


@pytest.fixture
def data_dir(tmp_path: Path) -> Path:
    target = tmp_path / "data"
    shutil.copytree(FIXTURE, target)
    return target


@pytest.fixture
def start(data_dir: Path, tmp_path: Path) -> Iterator[type[ServerState]]:
    """Starts servers on the data directory (``start(settings)``), closing them when the test ends."""
    started: list[ServerState] = []

    class Started(ServerState):
        def __init__(self, settings: ServerSettings) -> None:
            super().__init__(settings)
            started.append(self)

    yield Started
    for state in started:
        state.close()


def settings_for(data_dir: Path) -> ServerSettings:
    return ServerSettings(data_dir=data_dir, cache_dir=data_dir.parent / "modules")


def ddl(path: Path, prefix: str) -> set[tuple[str, str, str]]:
    """The tables and indexes of a tenant in a SQLite file, as SQLite keeps their definitions."""
    with sqlite3.connect(path) as conn:
        rows = conn.execute(
            "SELECT type, name, sql FROM sqlite_master WHERE substr(tbl_name, 1, ?) = ?", (len(prefix), prefix)
        ).fetchall()
    conn.close()
    return {(str(t), str(n), str(s)) for t, n, s in rows}


def record_tables(path: Path) -> set[str]:
    with sqlite3.connect(path) as conn:
        names = {
            str(n)
            for (n,) in conn.execute(
                "SELECT name FROM sqlite_master WHERE type = 'table' AND substr(name, 1, 4) = 'cdb_'"
            )
        }
    conn.close()
    return names


def test_each_tenant_environment_gets_its_records_verbatim_in_a_private_file(
    data_dir: Path, start: type[ServerState]
) -> None:
    state = start(settings_for(data_dir))
    backup = data_dir / SPLIT_BACKUP
    assert not (data_dir / SHARED_RECORDS).exists() and backup.is_file()
    files = sorted(p.relative_to(data_dir / "records").as_posix() for p in (data_dir / "records").rglob("*.sqlite3"))
    assert files == [f"{tenant}/{env}.sqlite3" for tenant, env in MOVED]
    for tenant_id, env in MOVED:
        path = state.settings.records_file(tenant_id, env)
        assert path is not None
        assert stat.S_IMODE(path.stat().st_mode) == 0o600
        assert stat.S_IMODE(path.parent.stat().st_mode) == 0o700
        prefix = tenant_prefix(f"{tenant_id}:{env}")
        assert ddl(path, prefix) == ddl(backup, prefix)  # tables, columns and indexes as they were
        assert all(name.startswith(prefix) for name in record_tables(path))  # and nobody else's
    assert stat.S_IMODE((data_dir / "records").stat().st_mode) == 0o700

    with state.store("alpha", "production").begin() as tx:
        [invoice] = tx.query("SELECT Id, Number__c, Amount__c, Account__r.Name FROM Invoice__c", {}, 10).records
        contacts = tx.query("SELECT Id, LastName, Score__c, IsDeleted FROM Contact ORDER BY LastName", {}, 10)
        deleted = tx.query("SELECT Id FROM Contact WHERE IsDeleted = true", {}, 10).records
    assert invoice == {"Id": IDS["invoice"], "Number__c": "INV-1", "Amount__c": 12.5, "Account__r.Name": "Alpha Corp"}
    assert [(c["Id"], c["LastName"], c["Score__c"]) for c in contacts.records] == [(IDS["ada"], "Ada", 90)]
    assert deleted == [{"Id": IDS["gone"]}]
    with state.store("alpha", "dev").begin() as tx:
        assert tx.query("SELECT Id FROM Contact", {}, 10).records == [{"Id": IDS["dev"]}]
    beta = state.store("beta", "production")
    assert beta.schema.object("Invoice__c") is None and beta.schema.object("Contact").field("Score__c") is None  # type: ignore[union-attr]
    with beta.begin() as tx:
        assert tx.query("SELECT Id, LastName FROM Contact", {}, 10).records == [
            {"Id": IDS["beta"], "LastName": "Beta Person"}
        ]


def test_the_moved_records_take_writes_with_their_rules(data_dir: Path, start: type[ServerState]) -> None:
    state = start(settings_for(data_dir))
    duplicate = state.apply_change(
        "alpha", "production", DmlOp.INSERT, "Invoice__c", [{"Name": "Again", "Number__c": "inv-1"}], "test"
    )
    assert duplicate.status != "ok" and "Number__c" in str(duplicate.error)  # the external id stayed unique
    added = state.apply_change(
        "alpha", "production", DmlOp.INSERT, "Contact", [{"LastName": "New", "Score__c": 5}], "test"
    )
    assert added.status == "ok", added.error
    with state.store("alpha", "production").begin() as tx:
        assert tx.query("SELECT COUNT() FROM Contact", {}, 10).total_size == 2


def test_a_second_start_finds_nothing_to_move_and_keeps_the_writes(data_dir: Path, start: type[ServerState]) -> None:
    first = start(settings_for(data_dir))
    assert (
        first.apply_change("beta", "production", DmlOp.INSERT, "Contact", [{"LastName": "Later"}], "t").status == "ok"
    )
    first.close()
    second = start(settings_for(data_dir))
    assert sorted(p.name for p in data_dir.glob("records.sqlite3*")) == [SPLIT_BACKUP]
    with second.store("beta", "production").begin() as tx:
        assert tx.query("SELECT COUNT() FROM Contact", {}, 10).total_size == 2


def test_an_interrupted_split_carries_on_and_keeps_the_files_it_made(data_dir: Path, start: type[ServerState]) -> None:
    settings = settings_for(data_dir)
    made = settings.records_file("alpha", "production")
    assert made is not None
    made.parent.mkdir(parents=True)
    assert copy_tenant(data_dir / SHARED_RECORDS, made, "alpha:production")  # the first start got this far
    assert not copy_tenant(data_dir / SHARED_RECORDS, made, "alpha:production")  # never over an existing file
    assert list(made.parent.glob(".*partial*")) == []
    with sqlite3.connect(made) as conn:
        conn.execute(f"UPDATE {tenant_prefix('alpha:production')}contact SET lastname = 'Ada (since)'")
    conn.close()
    state = start(settings)
    with state.store("alpha", "production").begin() as tx:
        assert [r["LastName"] for r in tx.query("SELECT LastName FROM Contact", {}, 10).records] == ["Ada (since)"]
    with state.store("beta", "production").begin() as tx:
        assert tx.query("SELECT COUNT() FROM Contact", {}, 10).total_size == 1


def test_tables_of_unknown_tenants_stay_in_the_renamed_file(data_dir: Path, start: type[ServerState]) -> None:
    start(settings_for(data_dir))
    stray = tenant_prefix("default")
    assert any(name.startswith(stray) for name in record_tables(data_dir / SPLIT_BACKUP))
    for path in (data_dir / "records").rglob("*.sqlite3"):
        assert not any(name.startswith(stray) for name in record_tables(path))


def test_a_shared_database_keeps_its_layout(data_dir: Path) -> None:
    settings = ServerSettings(data_dir=data_dir, db_url="postgresql://127.0.0.1/none")
    assert settings.records_file("alpha", "production") is None
    assert settings.records_url_for("alpha", "production") == "postgresql://127.0.0.1/none"
