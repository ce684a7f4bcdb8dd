"""Triggers fired by a circuit's DML, with Apex semantics, sharing one transaction and budget."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from circuit_host.circuitdb import CircuitDB
from circuit_host.connectors.http_client import HttpConnector
from circuit_host.connectors.records import DmlOp, RecordsConnector
from circuit_host.execution.executions import ExecutionOptions, ExecutionRecord, Executor
from circuit_host.execution.limits import LimitsProfile
from circuit_host.execution.trigger_events import run_trigger_event
from circuit_host.sandbox.runtime import CircuitModule, Runtime
from circuit_host.toolchain.zig_build import build_circuit
from circuit_host.triggers import MAX_TRIGGER_DEPTH, TriggerBinding, TriggerRegistry

CIRCUITS = Path(__file__).parent / "circuits"
EXAMPLES = Path(__file__).resolve().parents[2] / "examples"
Load = Callable[[str], Any]


@pytest.fixture(scope="session")
def circuits(runtime: Runtime, tmp_path_factory: pytest.TempPathFactory) -> dict[str, CircuitModule]:
    out = tmp_path_factory.mktemp("trigger-circuits")
    sources = [*CIRCUITS.iterdir(), EXAMPLES / "hello"]
    return {src.name: runtime.load(build_circuit(src, out).read_bytes()) for src in sources if src.is_dir()}


@pytest.fixture
def registry() -> TriggerRegistry:
    return TriggerRegistry()


@pytest.fixture
def records(any_records: CircuitDB) -> CircuitDB:
    """Trigger cascades run on both backends."""
    return any_records


@pytest.fixture
def firing_executor(runtime: Runtime, records: CircuitDB, registry: TriggerRegistry) -> Iterator[Executor]:
    http = HttpConnector()
    yield Executor(runtime, records, http, triggers=registry)
    http.close()


def register(registry: TriggerRegistry, circuits: dict[str, CircuitModule], name: str, obj: str, op: str) -> None:
    registry.register("default", TriggerBinding(f"{name}:{op}", obj, op, circuits[name]))


def rows(records: RecordsConnector, soql: str) -> list[dict[str, Any]]:
    tx = records.begin()
    try:
        return tx.query(soql, {}, max_rows=10_000).records
    finally:
        tx.close()


def trigger_lines(record: ExecutionRecord) -> list[str]:
    return [e.message for e in record.logs if e.event == "CODE_UNIT_STARTED"]


def contact_event(*contacts: dict[str, Any]) -> dict[str, Any]:
    return {"kind": "trigger", "object": "Contact", "operation": "after_insert", "new": list(contacts)}


def test_before_trigger_changes_are_what_gets_saved(
    firing_executor: Executor, records: RecordsConnector, registry: TriggerRegistry, circuits: Any, load_guest: Load
) -> None:
    register(registry, circuits, "stamp", "Contact", "before_insert")
    record = firing_executor.run(load_guest("dml_then_trap"), 1)  # inserts Contact "Trapped"
    assert record.status == "ok", record.error
    assert [(r["LastName"], r["Title"]) for r in rows(records, "SELECT LastName, Title FROM Contact")] == [
        ("Trapped", "Stamped")
    ]
    assert trigger_lines(record) == ["trigger stamp:before_insert on Contact.before_insert (depth 1, 1 records)"]


def test_after_trigger_dml_fires_further_triggers_in_one_transaction(
    firing_executor: Executor, records: RecordsConnector, registry: TriggerRegistry, circuits: Any, load_guest: Load
) -> None:
    register(registry, circuits, "task_per_contact", "Contact", "after_insert")
    register(registry, circuits, "task_touches_contact", "Task", "after_insert")
    register(registry, circuits, "stamp", "Contact", "before_update")
    record = firing_executor.run(load_guest("dml_then_trap"), 1)
    assert record.status == "ok", record.error
    [contact] = rows(records, "SELECT LastName, Title, Department FROM Contact")
    assert (contact["Department"], contact["Title"]) == ("Has tasks", "Stamped")
    [task] = rows(records, "SELECT Subject, WhoId FROM Task")
    assert task == {"Id": task["Id"], "Subject": "Follow up Trapped", "WhoId": contact["Id"]}
    assert [line.split(" (")[1] for line in trigger_lines(record)] == [
        "depth 1, 1 records)",  # Contact after_insert
        "depth 2, 1 records)",  # Task after_insert
        "depth 3, 1 records)",  # Contact before_update
    ]
    # One budget: the circuit's insert plus the triggers' insert and update.
    assert record.usage["dml_statements"].used == 3


def test_a_failing_execution_rolls_back_what_its_triggers_wrote(
    firing_executor: Executor, records: RecordsConnector, registry: TriggerRegistry, circuits: Any, load_guest: Load
) -> None:
    register(registry, circuits, "task_per_contact", "Contact", "after_insert")
    record = firing_executor.run(load_guest("dml_then_trap"), 0)  # insert, then trap
    assert record.status == "trap"
    assert rows(records, "SELECT Id FROM Contact") == []
    assert rows(records, "SELECT Id FROM Task") == []


def test_trigger_err_is_a_catchable_dml_error_for_the_caller(
    firing_executor: Executor, records: RecordsConnector, registry: TriggerRegistry, circuits: Any
) -> None:
    register(registry, circuits, "reject_tasks", "Task", "before_insert")
    record = run_trigger_event(firing_executor, circuits["task_per_contact"], contact_event({"LastName": "X"}))
    # task_per_contact does not catch the DmlError, so its handle returns err: a guest error, not a trap.
    assert record.status == "error"
    assert record.error["kind"] == "guest_error"
    assert "tasks are frozen" in record.error["message"]
    assert rows(records, "SELECT Id FROM Task") == []
    assert rows(records, "SELECT Id FROM Contact") == []


def test_depth_16_runs_and_depth_17_fails_the_execution(
    firing_executor: Executor, records: RecordsConnector, registry: TriggerRegistry, circuits: Any
) -> None:
    register(registry, circuits, "chain", "Contact", "after_insert")
    deepest = contact_event({"LastName": "root", "Department": f"remaining:{MAX_TRIGGER_DEPTH}"})
    record = run_trigger_event(firing_executor, circuits["chain"], deepest)
    assert record.status == "ok", record.error
    assert len(rows(records, "SELECT Id FROM Contact")) == MAX_TRIGGER_DEPTH + 1
    assert trigger_lines(record)[-1].endswith(f"(depth {MAX_TRIGGER_DEPTH}, 1 records)")

    too_deep = contact_event({"LastName": "root2", "Department": f"remaining:{MAX_TRIGGER_DEPTH + 1}"})
    record = run_trigger_event(firing_executor, circuits["chain"], too_deep)
    assert record.status == "limit_exceeded"
    assert record.error["resource"] == "trigger_depth"
    assert len(rows(records, "SELECT Id FROM Contact")) == MAX_TRIGGER_DEPTH + 1  # nothing of the second run


def test_records_reach_triggers_in_chunks_of_200(
    firing_executor: Executor, registry: TriggerRegistry, circuits: Any
) -> None:
    register(registry, circuits, "hello", "Task", "after_insert")
    batch = [{"LastName": f"L{i}"} for i in range(450)]
    record = run_trigger_event(firing_executor, circuits["task_per_contact"], contact_event(*batch))
    assert record.status == "ok", record.error
    assert [line.split("(depth 1, ")[1] for line in trigger_lines(record)] == [
        "200 records)",
        "200 records)",
        "50 records)",
    ]
    assert record.usage["dml_statements"].used == 1  # one statement, three trigger chunks


def test_triggers_draw_on_the_executions_fuel(
    firing_executor: Executor, records: RecordsConnector, registry: TriggerRegistry, circuits: Any
) -> None:
    register(registry, circuits, "hello", "Task", "after_insert")
    batch = contact_event(*[{"LastName": f"L{i}"} for i in range(50)])
    alone = run_trigger_event(firing_executor, circuits["task_per_contact"], batch)
    assert alone.status == "ok"
    registry.unregister("default", "hello:after_insert")
    without = run_trigger_event(firing_executor, circuits["task_per_contact"], batch)
    assert alone.usage["fuel"].used > without.usage["fuel"].used  # the trigger's fuel was counted
    register(registry, circuits, "hello", "Task", "after_insert")
    budget = ExecutionOptions(limits=LimitsProfile(fuel=without.usage["fuel"].used + 1000))
    starved = run_trigger_event(firing_executor, circuits["task_per_contact"], batch, budget)
    assert starved.status == "limit_exceeded"
    assert starved.error["resource"] == "fuel"
    assert starved.usage["fuel"].used <= budget.limits.fuel


def test_dml_on_objects_without_triggers_takes_the_plain_path(
    firing_executor: Executor, registry: TriggerRegistry, circuits: Any, load_guest: Load
) -> None:
    register(registry, circuits, "stamp", "Lead", "before_insert")
    record = firing_executor.run(load_guest("dml_then_trap"), 1)
    assert record.status == "ok"
    assert trigger_lines(record) == []


def test_an_outside_change_fires_triggers_as_one_execution(
    firing_executor: Executor, records: RecordsConnector, registry: TriggerRegistry, circuits: Any
) -> None:
    register(registry, circuits, "stamp", "Contact", "before_insert")
    register(registry, circuits, "task_per_contact", "Contact", "after_insert")
    record = firing_executor.apply_change(DmlOp.INSERT, "Contact", [{"LastName": "Hooked"}])
    assert record.status == "ok", record.error
    assert [(r["LastName"], r["Title"]) for r in rows(records, "SELECT LastName, Title FROM Contact")] == [
        ("Hooked", "Stamped")
    ]
    assert [t["Subject"] for t in rows(records, "SELECT Subject FROM Task")] == ["Follow up Hooked"]
    assert record.usage["dml_statements"].used == 1  # the host's own write is not charged; the trigger's is
    assert "EXECUTION_START" in record.debug_log and "CODE_UNIT_STARTED" in record.debug_log


def test_an_outside_change_is_not_saved_when_a_trigger_fails(
    firing_executor: Executor, records: RecordsConnector, registry: TriggerRegistry, circuits: Any
) -> None:
    register(registry, circuits, "task_per_contact", "Contact", "after_insert")
    register(registry, circuits, "reject_tasks", "Task", "before_insert")
    record = firing_executor.apply_change(DmlOp.INSERT, "Contact", [{"LastName": "Refused"}])
    assert record.status == "error"
    assert "tasks are frozen" in record.error["message"]
    assert rows(records, "SELECT Id FROM Contact") == []


def test_upsert_key_names_cannot_smuggle_soql(
    firing_executor: Executor, registry: TriggerRegistry, circuits: Any
) -> None:
    register(registry, circuits, "stamp", "Contact", "before_insert")
    hostile = "Email FROM Contact WHERE LastName != ''"
    record = firing_executor.apply_change(DmlOp.UPSERT, "Contact", [{"LastName": "X"}], external_id=hostile)
    assert record.status == "error"
    assert "invalid name" in record.error["message"]


def test_upsert_through_triggers_keeps_the_stores_external_id_rule(
    firing_executor: Executor, registry: TriggerRegistry, circuits: Any, records: CircuitDB
) -> None:
    """Email is not an external id: the store refuses it as an upsert key, and so must the firing
    path, which splits an upsert into update and insert itself (issue 11, item 18)."""
    plain = Executor(firing_executor.runtime, records, firing_executor.http)
    refused_plainly = plain.apply_change(
        DmlOp.UPSERT, "Contact", [{"LastName": "X", "Email": "x@a.io"}], external_id="Email"
    )
    register(registry, circuits, "stamp", "Contact", "before_insert")
    with_triggers = firing_executor.apply_change(
        DmlOp.UPSERT, "Contact", [{"LastName": "X", "Email": "x@a.io"}], external_id="Email"
    )
    assert refused_plainly.status == with_triggers.status == "error"
    assert "is not an external id field" in with_triggers.error["message"]
    assert rows(records, "SELECT Id FROM Contact") == []
