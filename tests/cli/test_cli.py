"""The ``circuit`` command line, run as a real subprocess."""

from __future__ import annotations

import json
import subprocess
import sys
import uuid
from pathlib import Path

import pytest
import sqlalchemy

from circuit_host.circuitdb import FieldDef, FieldType, SchemaChanges, open_store
from circuit_host.circuitdb.schema import MAX_CUSTOM_FIELDS_PER_OBJECT
from circuit_host.circuitdb.store import drop_tenant
from tests.conftest import guest_wat, require_postgres

ROOT = Path(__file__).resolve().parents[2]


def circuit(*args: str | Path, cache: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "circuit_host.cli", "--cache-dir", str(cache), *map(str, args)],
        capture_output=True,
        text=True,
        timeout=120,
        cwd=ROOT,
    )


@pytest.fixture
def cache(tmp_path: Path) -> Path:
    return tmp_path / "cache"


def write_wat(tmp_path: Path, name: str) -> Path:
    path = tmp_path / f"{name}.wat"
    path.write_text(guest_wat(name))
    return path


def write_json(tmp_path: Path, name: str, value: object) -> Path:
    path = tmp_path / name
    path.write_text(json.dumps(value))
    return path


def test_build_prints_the_wasm_path_last_and_run_executes_it(tmp_path: Path, cache: Path) -> None:
    built = circuit("build", ROOT / "examples" / "hello", "--out", tmp_path / "out", cache=cache)
    assert built.returncode == 0, built.stderr
    wasm = Path(built.stdout.strip().splitlines()[-1])
    assert wasm.suffix == ".wasm" and wasm.exists()
    ran = circuit("run", wasm, "--event", ROOT / "examples" / "hello" / "event.json", "--json", cache=cache)
    assert ran.returncode == 0, ran.stderr
    result = json.loads(ran.stdout)
    assert result["status"] == "ok"
    assert result["output"]["greeted"] >= 1


def test_run_json_prints_exactly_one_object_with_the_documented_keys(tmp_path: Path, cache: Path) -> None:
    event = write_json(tmp_path, "e.json", {"hello": "world"})
    ran = circuit("run", write_wat(tmp_path, "echo"), "--event", event, "--json", cache=cache)
    assert ran.returncode == 0
    result = json.loads(ran.stdout)  # fails if anything else is on stdout
    assert {"status", "output", "error", "usage", "logs", "duration_ms"} <= set(result)
    assert result["output"] == {"hello": "world"}
    assert result["error"] is None
    assert result["usage"]["queries"] == {"used": 0, "limit": 100}


@pytest.mark.parametrize(
    ("guest", "limits", "status", "code"),
    [
        ("fail", {}, "error", 1),
        ("spin", {"timeout_ms": 200}, "timeout", 1),
        ("spin", {"fuel": 1000000}, "limit_exceeded", 1),
        ("abuse", {}, "trap", 1),
        ("imports_wasi", {}, "rejected", 2),
    ],
)
def test_run_exit_code_is_zero_only_for_ok(
    tmp_path: Path, cache: Path, guest: str, limits: dict[str, int], status: str, code: int
) -> None:
    event = write_json(tmp_path, "e.json", 3)
    args: list[str | Path] = ["run", write_wat(tmp_path, guest), "--event", event, "--json"]
    if limits:
        args += ["--limits", write_json(tmp_path, "limits.json", limits)]
    ran = circuit(*args, cache=cache)
    assert ran.returncode == code
    result = json.loads(ran.stdout)
    assert result["status"] == status
    assert result["error"]["message"]


@pytest.mark.parametrize(
    ("limits", "message"),
    [({"fuel": "lots"}, "fuel"), ({"queries_per_day": 5}, "queries_per_day"), ([1], "JSON object")],
)
def test_bad_limits_file_is_rejected_clearly(tmp_path: Path, cache: Path, limits: object, message: str) -> None:
    event = write_json(tmp_path, "e.json", 1)
    bad = write_json(tmp_path, "limits.json", limits)
    ran = circuit("run", write_wat(tmp_path, "echo"), "--event", event, "--limits", bad, "--json", cache=cache)
    assert ran.returncode == 2
    assert message in json.loads(ran.stdout)["error"]["message"]


def test_bad_event_files_are_rejected_clearly(tmp_path: Path, cache: Path) -> None:
    module = write_wat(tmp_path, "echo")
    broken = tmp_path / "broken.json"
    broken.write_text("{not json")
    ran = circuit("run", module, "--event", broken, cache=cache)
    assert ran.returncode == 2
    assert "not valid JSON" in ran.stderr
    bad_trigger = write_json(tmp_path, "t.json", {"kind": "trigger", "object": "Contact", "operation": "after_explode"})
    ran = circuit("run", module, "--event", bad_trigger, "--json", cache=cache)
    assert ran.returncode == 2
    assert "operation" in json.loads(ran.stdout)["error"]["message"]
    ran = circuit("run", tmp_path / "missing.wasm", "--event", bad_trigger, cache=cache)
    assert ran.returncode == 2
    assert "cannot read" in ran.stderr


def test_trigger_run_saves_records_and_query_reads_what_was_committed(tmp_path: Path, cache: Path) -> None:
    db = tmp_path / "records.db"
    wasm = tmp_path / "vlpr"
    built = circuit("build", ROOT / "examples" / "virtual_lpr", "--out", wasm, cache=cache)
    assert built.returncode == 0, built.stderr
    module = built.stdout.strip().splitlines()[-1]
    event = ROOT / "examples" / "virtual_lpr" / "event.json"
    manifest = ROOT / "examples" / "virtual_lpr" / "circuit.toml"
    without = circuit("run", module, "--event", event, "--db", db, "--json", cache=cache)
    assert "Company_Size__c: no such field on Contact" in json.loads(without.stdout)["error"]["message"]
    ran = circuit("run", module, "--event", event, "--db", db, "--manifest", manifest, "--json", cache=cache)
    assert ran.returncode == 0, ran.stdout + ran.stderr
    queried = circuit("query", "SELECT LastName, VLPR_Grade__c FROM Contact", "--db", db, "--json", cache=cache)
    assert queried.returncode == 0, queried.stderr
    rows = json.loads(queried.stdout)
    saved = json.loads(event.read_text())["new"]
    assert sorted(r["LastName"] for r in rows) == sorted(c["LastName"] for c in saved)
    assert all(r["VLPR_Grade__c"] in {"A", "B", "C", "D"} for r in rows)
    tasks = circuit("query", "SELECT COUNT() FROM Task", "--db", db, "--json", cache=cache)
    grade_a = sum(1 for r in rows if r["VLPR_Grade__c"] == "A")
    assert json.loads(tasks.stdout) == {"count": grade_a}
    assert grade_a >= 1


def test_a_failed_trigger_run_commits_nothing_not_even_the_triggering_records(tmp_path: Path, cache: Path) -> None:
    db = tmp_path / "records.db"
    event = write_json(
        tmp_path,
        "t.json",
        {"kind": "trigger", "object": "Contact", "operation": "after_insert", "new": [{"LastName": "Gone"}]},
    )
    ran = circuit("run", write_wat(tmp_path, "fail"), "--event", event, "--db", db, "--json", cache=cache)
    assert json.loads(ran.stdout)["status"] == "error"
    queried = circuit("query", "SELECT Id FROM Contact", "--db", db, "--json", cache=cache)
    assert json.loads(queried.stdout) == []


def test_query_reports_bad_soql_with_position(tmp_path: Path, cache: Path) -> None:
    db = tmp_path / "records.db"
    event = write_json(tmp_path, "e.json", 1)
    circuit("run", write_wat(tmp_path, "dml_then_trap"), "--event", event, "--db", db, cache=cache)
    bad = circuit("query", "SELECT Id FROM", "--db", db, cache=cache)
    assert bad.returncode == 1
    assert "column" in bad.stderr


def test_allow_host_patterns_are_validated(tmp_path: Path, cache: Path) -> None:
    event = write_json(tmp_path, "e.json", 1)
    ran = circuit(
        "run", write_wat(tmp_path, "echo"), "--event", event, "--allow-host", "ftp://x", "--json", cache=cache
    )
    assert ran.returncode == 2
    assert "allowed host" in json.loads(ran.stdout)["error"]["message"]


def test_allow_network_takes_networks_only(tmp_path: Path, cache: Path) -> None:
    event = write_json(tmp_path, "e.json", 1)
    ran = circuit(
        "run", write_wat(tmp_path, "echo"), "--event", event, "--allow-network", "intranet", "--json", cache=cache
    )
    assert ran.returncode == 2
    assert "--allow-network" in json.loads(ran.stdout)["error"]["message"]
    ok = circuit(
        "run", write_wat(tmp_path, "echo"), "--event", event, "--allow-network", "10.1.2.0/24", "--json", cache=cache
    )
    assert ok.returncode == 0, ok.stdout


def test_manifest_beside_the_built_module_is_applied(tmp_path: Path, cache: Path) -> None:
    # `circuit build` writes DIR/zig-out/NAME.wasm: DIR/circuit.toml is found without --manifest.
    source = tmp_path / "vlpr"
    source.mkdir()
    for name in ("circuit.zig", "circuit.toml"):
        (source / name).write_text((ROOT / "examples" / "virtual_lpr" / name).read_text())
    built = circuit("build", source, cache=cache)
    module = built.stdout.strip().splitlines()[-1]
    assert Path(module).parent == source / "zig-out"
    event = ROOT / "examples" / "virtual_lpr" / "event.json"
    ran = circuit("run", module, "--event", event, "--db", tmp_path / "r.db", "--json", cache=cache)
    assert json.loads(ran.stdout)["status"] == "ok", ran.stdout


def test_schema_commands_add_and_show_custom_fields(tmp_path: Path, cache: Path) -> None:
    db = tmp_path / "records.db"
    added = circuit(
        "schema", "add-field", "Contact", "Tier__c", "picklist", "--values", "Gold,Silver", "--db", db, cache=cache
    )
    assert added.returncode == 0, added.stderr
    shown = circuit("schema", "show", "Contact", "--db", db, cache=cache)
    assert "Tier__c" in shown.stdout and "picklist" in shown.stdout
    assert "LastName" in shown.stdout and "required" in shown.stdout
    bad = circuit("schema", "add-field", "Contact", "Tier", "text", "--db", db, cache=cache)
    assert bad.returncode == 2
    assert "__c" in bad.stderr
    applied = circuit("schema", "apply", ROOT / "examples" / "virtual_lpr" / "circuit.toml", "--db", db, cache=cache)
    assert applied.returncode == 0, applied.stderr
    assert "Circuit_Setting__c" in circuit("schema", "show", "Circuit_Setting__c", "--db", db, cache=cache).stdout


def test_schema_add_field_stops_at_the_fields_per_object_cap(tmp_path: Path, cache: Path) -> None:
    db = tmp_path / "records.db"
    full = [("Contact", FieldDef(f"F{i}__c", FieldType.TEXT)) for i in range(MAX_CUSTOM_FIELDS_PER_OBJECT)]
    with open_store(db) as records:
        records.apply_schema(SchemaChanges(fields=tuple(full)))
    refused = circuit("schema", "add-field", "Contact", "One_More__c", "text", "--db", db, cache=cache)
    assert refused.returncode == 2
    assert f"object Contact: {MAX_CUSTOM_FIELDS_PER_OBJECT + 1} custom fields would exceed the limit" in refused.stderr
    assert "max_custom_fields_per_object" in refused.stderr
    with open_store(db) as records:
        assert records.schema.object("Contact").field("One_More__c") is None  # type: ignore[union-attr]


def test_db_accepts_a_postgresql_url_and_tenants_stay_apart(tmp_path: Path, cache: Path) -> None:
    url = require_postgres()
    tenant = f"cli-{uuid.uuid4().hex[:10]}"
    event = write_json(
        tmp_path,
        "e.json",
        {"kind": "trigger", "object": "Contact", "operation": "after_insert", "new": [{"LastName": "Pg"}]},
    )
    module = write_wat(tmp_path, "echo")
    soql = "SELECT LastName FROM Contact"
    try:
        ran = circuit("--tenant", tenant, "run", module, "--event", event, "--db", url, "--json", cache=cache)
        assert json.loads(ran.stdout)["status"] == "ok", ran.stdout + ran.stderr
        saved_id = json.loads(ran.stdout)["output"]["new"][0]["Id"]
        queried = circuit("--tenant", tenant, "query", soql, "--db", url, "--json", cache=cache)
        assert json.loads(queried.stdout) == [{"Id": saved_id, "LastName": "Pg"}]
        other = circuit("--tenant", f"{tenant}-b", "query", soql, "--db", url, "--json", cache=cache)
        assert json.loads(other.stdout) == []  # another tenant never sees these records
    finally:
        engine = sqlalchemy.create_engine(url, isolation_level="AUTOCOMMIT")
        for name in (tenant, f"{tenant}-b"):
            drop_tenant(engine, name)
        engine.dispose()


def test_unreachable_database_is_a_clear_error(tmp_path: Path, cache: Path) -> None:
    event = write_json(tmp_path, "e.json", 1)
    url = "postgresql+psycopg://nobody@127.0.0.1:1/none"
    ran = circuit("run", write_wat(tmp_path, "echo"), "--event", event, "--db", url, "--json", cache=cache)
    assert ran.returncode == 2
    assert "cannot open the records store" in json.loads(ran.stdout)["error"]["message"]


def test_query_refuses_a_store_that_is_not_there_instead_of_creating_an_empty_one(tmp_path: Path, cache: Path) -> None:
    typo = tmp_path / "typo.db"
    answered = circuit("query", "SELECT Id FROM Contact", "--db", typo, cache=cache)
    assert answered.returncode == 2
    assert f"no records store at {typo}" in answered.stderr
    assert "(0 rows)" not in answered.stdout
    assert not typo.exists()
    shown = circuit("schema", "show", "Contact", "--db", f"sqlite:///{typo}", cache=cache)
    assert shown.returncode == 2
    assert not typo.exists()


def test_deploy_of_a_missing_bundle_file_is_a_clear_error_not_a_traceback(tmp_path: Path, cache: Path) -> None:
    missing = tmp_path / "nothing.circuit"
    deployed = circuit("deploy", missing, "--env", "dev", "--key", "k", "--server", "http://127.0.0.1:9", cache=cache)
    assert deployed.returncode == 2
    assert f"no bundle file {missing}" in deployed.stderr
    assert "Traceback" not in deployed.stderr
