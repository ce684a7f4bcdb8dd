"""The examples, run end to end on the real runtime, records store and a loopback census API.

The Virtual LPR expectations are worked out by hand from the spec in abi/README.md for the
contacts in examples/virtual_lpr/event.json (see that README for the per-contact breakdown).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import msgpack
import pytest

from circuit_host.circuitdb import CircuitDB
from circuit_host.execution.callout_policy import HostPattern
from circuit_host.execution.executions import ExecutionOptions, ExecutionRecord, Executor
from circuit_host.execution.trigger_events import run_trigger_event
from circuit_host.sandbox.runtime import Runtime
from tests.conftest import LoopbackServer, reply
from tests.guest_sdk.conftest import EXAMPLES

CENSUS = {
    "94105": {"median_household_income": 149800},
    "10001": {"median_household_income": 96500},
    "60614": {"median_household_income": 85000},
    "30310": {"median_household_income": 45000},
}
# Id suffix -> (score with census, score without)
EXPECTED = {"01IAB": (96, 86), "02IAB": (42, 36), "03IAB": (67, 61), "04IAB": (7, 5), "05IAB": (33, 23)}
GRADES = {"A": "Call within 1 hour", "B": "Call today", "C": "Add to nurture sequence", "D": "Monitor"}


def event(name: str) -> dict[str, Any]:
    data: dict[str, Any] = json.loads((EXAMPLES / name / "event.json").read_text())
    return data


def run(executor: Executor, runtime: Runtime, wasm: Path, allow: str | None = None) -> ExecutionRecord:
    options = ExecutionOptions(allowed_hosts=(HostPattern.parse(allow),) if allow else ())
    return run_trigger_event(executor, runtime.load_file(wasm), event(wasm.stem), options)


def configure_census(records: CircuitDB, url: str) -> None:
    transaction = records.begin()
    transaction.seed("Circuit_Setting__c", [{"Name": "census_url", "Value__c": url}])
    transaction.commit()
    transaction.close()


def contacts(records: CircuitDB) -> dict[str, dict[str, Any]]:
    transaction = records.begin()
    try:
        rows = transaction.query("SELECT Id, VLPR_Score__c, VLPR_Grade__c, Next_Action__c FROM Contact", {}, 100)
    finally:
        transaction.close()
    return {row["Id"][-5:]: row for row in rows.records}


def tasks(records: CircuitDB) -> list[dict[str, Any]]:
    transaction = records.begin()
    try:
        rows = transaction.query("SELECT Subject, Priority, Status, WhoId, Description FROM Task", {}, 100)
    finally:
        transaction.close()
    return list(rows.records)


def messages(record: ExecutionRecord) -> list[tuple[str, str]]:
    return [(entry.level, entry.message) for entry in record.logs if entry.source == "guest"]


def test_hello_greets_each_new_record(executor: Executor, runtime: Runtime, example_wasm: dict[str, Path]) -> None:
    record = run(executor, runtime, example_wasm["hello"])
    assert record.status == "ok", record.error
    assert record.output == {"greeted": 3}
    assert messages(record) == [
        ("info", "Hello, Ada! (Contact after_insert)"),
        ("info", "Hello, Grace! (Contact after_insert)"),
        ("info", "Hello, there! (Contact after_insert)"),
    ]


def assert_scored(records: CircuitDB, with_census: bool) -> None:
    rows = contacts(records)
    for suffix, scores in EXPECTED.items():
        score = scores[0] if with_census else scores[1]
        grade = "A" if score >= 70 else "B" if score >= 50 else "C" if score >= 30 else "D"
        assert rows[suffix]["VLPR_Score__c"] == score, suffix
        assert rows[suffix]["VLPR_Grade__c"] == grade, suffix
        assert rows[suffix]["Next_Action__c"] == GRADES[grade], suffix
    score_a = EXPECTED["01IAB"][0 if with_census else 1]
    assert tasks(records) == [
        {
            "Id": tasks(records)[0]["Id"],
            "Subject": f"CRITICAL: call Priya Raman (VLPR {score_a})",
            "Priority": "High",
            "Status": "Not Started",
            "WhoId": "003Qy00000VLp01IAB",
            "Description": f"Virtual LPR grade A, score {score_a}",
        }
    ]


def test_virtual_lpr_with_census_enrichment(
    executor: Executor,
    runtime: Runtime,
    records: CircuitDB,
    loopback: LoopbackServer,
    example_wasm: dict[str, Path],
) -> None:
    loopback.routes["/census"] = reply(200, msgpack.packb(CENSUS), "application/msgpack")
    configure_census(records, f"{loopback.base}/census")
    record = run(executor, runtime, example_wasm["virtual_lpr"], allow=loopback.base)
    assert record.status == "ok", record.error
    assert record.output == {"scored": 5, "grade_a": 1}
    assert messages(record) == [("info", "scored 5 contacts, 1 grade A")]
    # one callout for the batch, distinct non-empty zips in first-seen order
    [(method, path, body)] = loopback.requests
    assert (method, path) == ("POST", "/census")
    assert msgpack.unpackb(body) == {"zips": ["94105", "10001", "60614", "30310"]}
    assert record.usage["queries"].used == 1
    assert record.usage["callouts"].used == 1
    assert record.usage["dml_statements"].used == 2  # one update, one Task insert
    assert_scored(records, with_census=True)


def test_virtual_lpr_without_setting_scores_without_census(
    executor: Executor, runtime: Runtime, records: CircuitDB, example_wasm: dict[str, Path]
) -> None:
    record = run(executor, runtime, example_wasm["virtual_lpr"])
    assert record.status == "ok", record.error
    assert messages(record) == [
        ("info", "census enrichment not configured"),
        ("info", "scored 5 contacts, 1 grade A"),
    ]
    assert record.usage["callouts"].used == 0
    assert_scored(records, with_census=False)


@pytest.mark.parametrize("allowed", [True, False])
def test_virtual_lpr_census_failure_only_warns(
    executor: Executor,
    runtime: Runtime,
    records: CircuitDB,
    loopback: LoopbackServer,
    example_wasm: dict[str, Path],
    allowed: bool,
) -> None:
    loopback.routes["/census"] = reply(503, b"down")
    configure_census(records, f"{loopback.base}/census")
    record = run(executor, runtime, example_wasm["virtual_lpr"], allow=loopback.base if allowed else None)
    assert record.status == "ok", record.error
    [warning, summary] = messages(record)
    assert warning[0] == "warn" and warning[1].startswith("census enrichment failed: ")
    if allowed:
        assert warning[1] == "census enrichment failed: HTTP 503"
    assert summary == ("info", "scored 5 contacts, 1 grade A")
    assert_scored(records, with_census=False)
