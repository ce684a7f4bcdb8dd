"""Virtual LPR, built from examples/virtual_lpr with the Zig SDK and run in the sandbox.

The native-Python implementation in ``benchmarks/native_vlpr.py`` is the reference:
on the same input, the guest must commit exactly what it commits.
"""

from __future__ import annotations

import json
import random
import uuid
from collections.abc import Callable, Iterator
from http.server import BaseHTTPRequestHandler
from pathlib import Path
from typing import Any

import msgpack
import pytest
from benchmarks import native_vlpr

from circuit_host.circuitdb import CircuitDB, open_store
from circuit_host.circuitdb.manifest import read_schema
from circuit_host.connectors.http_client import HttpConnector
from circuit_host.execution.callout_policy import HostPattern
from circuit_host.execution.executions import ExecutionOptions, ExecutionRecord, Executor
from circuit_host.execution.trigger_events import run_trigger_event
from circuit_host.sandbox.runtime import CircuitModule, Runtime
from circuit_host.toolchain.zig_build import build_circuit
from tests.conftest import LOOPBACK_NETWORKS, LoopbackServer, require_postgres

EXAMPLE = Path(__file__).resolve().parents[2] / "examples" / "virtual_lpr"
INCOMES = {"94105": 130_000, "10001": 75_000, "60601": 52_000}
TITLES = ["CEO", "VP Sales", "Director of Ops", "Office Manager", "Analyst", "", None, "Founder & Owner"]
SOURCES = ["Referral", "Web", "Website", "Event", "Trade Show", "Cold Call", None]
DOMAINS = ["acme.com", "gmail.com", "Yahoo.com", "globex.io", None]


@pytest.fixture(scope="session")
def vlpr(runtime: Runtime, tmp_path_factory: pytest.TempPathFactory) -> CircuitModule:
    wasm = build_circuit(EXAMPLE, tmp_path_factory.mktemp("vlpr-build"))
    return runtime.load(wasm.read_bytes())


@pytest.fixture(params=["sqlite", "postgresql"])
def vlpr_store(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Callable[[], CircuitDB]]:
    """Opens stores (each a tenant of its own) with the example's schema, on each backend."""
    opened: list[CircuitDB] = []

    def open_one() -> CircuitDB:
        target = str(tmp_path / "records.db") if request.param == "sqlite" else require_postgres()
        store = open_store(target, tenant=f"vlpr-{uuid.uuid4().hex[:12]}")
        store.apply_schema(read_schema(EXAMPLE / "circuit.toml"))
        opened.append(store)
        return store

    yield open_one
    for store in opened:
        store.drop_tenant()


def contacts(count: int, seed: int = 7) -> list[dict[str, Any]]:
    rng = random.Random(seed)
    result = []
    for i in range(count):
        domain = rng.choice(DOMAINS)
        contact: dict[str, Any] = {
            "FirstName": rng.choice(["Ana", "Bo", None]),
            "LastName": f"Lead{i}",
            "Title": rng.choice(TITLES),
            "Email": f"lead{i}@{domain}" if domain else None,
            "MailingPostalCode": rng.choice([*INCOMES, "99999", None]),
            "LeadSource": rng.choice(SOURCES),
            "Company_Size__c": rng.choice([0, 5, 10, 49, 50, 199, 200, 5000, 12.9]),
            "Website_Visits__c": rng.choice([0, 1, 3, 9, 10, 40, -2]),
            "Emails_Opened__c": rng.choice([0, 2, 5, 6, 2.7]),
            "Called_Business__c": rng.choice([True, False, None]),
        }
        result.append({k: v for k, v in contact.items() if v is not None})
    return result


def census(server: LoopbackServer) -> None:
    def handler(request: BaseHTTPRequestHandler) -> None:
        zips = msgpack.unpackb(request.body)["zips"]  # type: ignore[attr-defined]
        body = msgpack.packb({z: {"median_household_income": INCOMES[z]} for z in zips if z in INCOMES})
        request.send_response(200)
        request.send_header("content-length", str(len(body)))
        request.end_headers()
        request.wfile.write(body)

    server.routes["/census"] = handler


def configure_census(store: CircuitDB, url: str) -> None:
    tx = store.begin()
    tx.seed("Circuit_Setting__c", [{"Name": "census_url", "Value__c": url}])
    tx.commit()
    tx.close()


def run_guest(
    runtime: Runtime, module: CircuitModule, store: CircuitDB, batch: list[dict[str, Any]], allow: list[str]
) -> ExecutionRecord:
    http = HttpConnector(allowed_networks=LOOPBACK_NETWORKS)  # the census server is on loopback
    try:
        executor = Executor(runtime, store, http)
        event = {"kind": "trigger", "object": "Contact", "operation": "after_insert", "new": batch}
        options = ExecutionOptions(allowed_hosts=tuple(HostPattern.parse(a) for a in allow))
        return run_trigger_event(executor, module, event, options)
    finally:
        http.close()


def run_native(store: CircuitDB, batch: list[dict[str, Any]]) -> dict[str, int]:
    http = HttpConnector(allowed_networks=LOOPBACK_NETWORKS)  # the census server is on loopback
    tx = store.begin()
    try:
        ids = tx.seed("Contact", batch)
        result = native_vlpr.handle(tx, http, [{**c, "Id": i} for c, i in zip(batch, ids, strict=True)])
        tx.commit()
        return result
    finally:
        tx.close()
        http.close()


def committed(store: CircuitDB) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    tx = store.begin()
    try:
        people = tx.query(
            "SELECT LastName, VLPR_Score__c, VLPR_Grade__c, Next_Action__c FROM Contact ORDER BY LastName",
            {},
            max_rows=10_000,
        ).records
        tasks = tx.query(
            "SELECT Subject, Priority, Status, Description, WhoId FROM Task ORDER BY Subject", {}, max_rows=10_000
        ).records
    finally:
        tx.rollback()
        tx.close()
    names = {}
    tx = store.begin()
    for row in tx.query("SELECT LastName FROM Contact", {}, max_rows=10_000).records:
        names[row["Id"]] = row["LastName"]
    tx.close()
    for person in people:
        person.pop("Id")
    for task in tasks:
        task.pop("Id")
        task["WhoId"] = names[task["WhoId"]]  # ids differ between stores; compare by contact
    return people, tasks


def test_example_event_scores_the_high_intent_lead_as_a(
    runtime: Runtime, vlpr: CircuitModule, vlpr_store: Callable[[], CircuitDB]
) -> None:
    event = json.loads((EXAMPLE / "event.json").read_text())
    store = vlpr_store()
    record = run_guest(runtime, vlpr, store, event["new"], [])
    assert record.status == "ok", record.error
    people, tasks = committed(store)
    expected = {c["LastName"]: native_vlpr.score(c, {}) for c in event["new"]}
    assert {p["LastName"]: p["VLPR_Score__c"] for p in people} == expected
    assert max(expected.values()) >= 70
    assert len(tasks) == sum(1 for s in expected.values() if s >= 70) >= 1
    assert all(t["Priority"] == "High" and t["Subject"].startswith("CRITICAL: call ") for t in tasks)


def test_guest_commits_exactly_what_native_python_commits(
    runtime: Runtime, vlpr: CircuitModule, vlpr_store: Callable[[], CircuitDB], loopback: LoopbackServer
) -> None:
    census(loopback)
    batch = contacts(60)
    guest_store, native_store = vlpr_store(), vlpr_store()
    for store in (guest_store, native_store):
        configure_census(store, f"{loopback.base}/census")
    record = run_guest(runtime, vlpr, guest_store, batch, [loopback.base])
    assert record.status == "ok", record.error
    native = run_native(native_store, batch)
    assert record.output == native
    guest_rows, native_rows = committed(guest_store), committed(native_store)
    assert guest_rows == native_rows
    assert {p["VLPR_Grade__c"] for p in guest_rows[0]} == {"A", "B", "C", "D"}  # the batch covers every grade


def test_bulk_200_is_one_query_one_callout_two_dml(
    runtime: Runtime, vlpr: CircuitModule, vlpr_store: Callable[[], CircuitDB], loopback: LoopbackServer
) -> None:
    census(loopback)
    store = vlpr_store()
    configure_census(store, f"{loopback.base}/census")
    record = run_guest(runtime, vlpr, store, contacts(200, seed=11), [loopback.base])
    assert record.status == "ok", record.error
    assert record.usage["queries"].used == 1
    assert record.usage["callouts"].used == 1
    assert record.usage["dml_statements"].used == 2
    assert record.output["scored"] == 200
    assert [path for _, path, _ in loopback.requests].count("/census") == 1
    sent_zips = msgpack.unpackb(next(body for _, path, body in loopback.requests if path == "/census"))["zips"]
    assert sorted(sent_zips) == sorted({*INCOMES, "99999"})  # distinct, non-empty
    assert record.usage["dml_rows"].used == 200 + record.output["grade_a"]


def test_enrichment_failure_is_logged_and_scoring_goes_on(
    runtime: Runtime, vlpr: CircuitModule, vlpr_store: Callable[[], CircuitDB], loopback: LoopbackServer
) -> None:
    store = vlpr_store()
    configure_census(store, f"{loopback.base}/census")  # no route: the server answers 404
    batch = contacts(10)
    record = run_guest(runtime, vlpr, store, batch, [loopback.base])
    assert record.status == "ok", record.error
    assert any(e.level == "warn" for e in record.logs if e.source == "guest")
    people, _ = committed(store)
    assert sorted(p["VLPR_Score__c"] for p in people) == sorted(native_vlpr.score(c, {}) for c in batch)


def test_census_host_outside_the_allowlist_is_refused_but_scoring_goes_on(
    runtime: Runtime, vlpr: CircuitModule, vlpr_store: Callable[[], CircuitDB], loopback: LoopbackServer
) -> None:
    census(loopback)
    store = vlpr_store()
    configure_census(store, f"{loopback.base}/census")
    record = run_guest(runtime, vlpr, store, contacts(5), [])
    assert record.status == "ok"
    assert record.usage["callouts"].used == 1
    assert loopback.requests == []
