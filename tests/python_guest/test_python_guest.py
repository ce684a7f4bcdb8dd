"""Python guests end to end: Virtual LPR in Python commits exactly what the Zig guest and
native Python commit, and hostile guests are stopped and rolled back."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

from circuit_host.abi.codec import encode
from circuit_host.circuitdb import CircuitDB
from circuit_host.connectors.http_client import HttpConnector
from circuit_host.execution.executions import ExecutionOptions, ExecutionRecord, Executor
from circuit_host.execution.limits import LimitsProfile
from circuit_host.execution.trigger_events import run_trigger_event
from circuit_host.sandbox.components import CircuitComponent
from circuit_host.sandbox.runtime import CircuitModule, Runtime
from tests.conftest import LoopbackServer
from tests.contexts import make_context
from tests.examples.test_virtual_lpr import (  # noqa: F401  # fixtures
    census,
    committed,
    configure_census,
    contacts,
    run_guest,
    run_native,
    vlpr,
    vlpr_store,
)

EXAMPLE = Path(__file__).resolve().parents[2] / "examples" / "virtual_lpr_py"


def run_account(
    runtime: Runtime, component: CircuitComponent, store: CircuitDB, name: str, limits: LimitsProfile
) -> ExecutionRecord:
    http = HttpConnector()
    try:
        event = {"kind": "trigger", "object": "Account", "operation": "after_insert", "new": [{"Name": name}]}
        return run_trigger_event(Executor(runtime, store, http), component, event, ExecutionOptions(limits=limits))
    finally:
        http.close()


def task_count(store: CircuitDB) -> int:
    tx = store.begin()
    try:
        return len(tx.query("SELECT Id FROM Task", {}, max_rows=10_000).records)
    finally:
        tx.rollback()
        tx.close()


def test_python_guest_commits_exactly_what_zig_and_native_commit(
    runtime: Runtime,
    vlpr: CircuitModule,  # noqa: F811
    component_runtime: Runtime,
    py_vlpr: CircuitComponent,
    vlpr_store: Callable[[], CircuitDB],  # noqa: F811
    loopback: LoopbackServer,
) -> None:
    census(loopback)
    batch = contacts(60)
    py_store, zig_store, native_store = vlpr_store(), vlpr_store(), vlpr_store()
    for store in (py_store, zig_store, native_store):
        configure_census(store, f"{loopback.base}/census")
    py = run_guest(component_runtime, py_vlpr, py_store, batch, [loopback.base])
    assert py.status == "ok", py.error
    zig = run_guest(runtime, vlpr, zig_store, batch, [loopback.base])
    assert zig.status == "ok", zig.error
    native = run_native(native_store, batch)
    assert py.output == zig.output == native
    assert committed(py_store) == committed(zig_store) == committed(native_store)
    for resource in ("queries", "callouts", "dml_statements", "dml_rows", "query_rows"):
        assert py.usage[resource].used == zig.usage[resource].used, resource


def test_example_event(
    component_runtime: Runtime,
    py_vlpr: CircuitComponent,
    vlpr_store: Callable[[], CircuitDB],  # noqa: F811
) -> None:
    event = json.loads((EXAMPLE / "event.json").read_text())
    record = run_guest(component_runtime, py_vlpr, vlpr_store(), event["new"], [])
    assert record.status == "ok", record.error
    assert record.output == {"scored": len(event["new"]), "grade_a": 1}
    assert record.usage["fuel"].used > 0


def test_serialized_component_is_reloaded_from_disk(component_runtime: Runtime, py_wasm: Path) -> None:
    fresh = Runtime(component_runtime.cache.directory)
    try:
        loaded = fresh.load_file(py_wasm)
        assert isinstance(loaded, CircuitComponent) and loaded.from_disk_cache
    finally:
        fresh.close()


def test_infinite_loop_times_out_then_the_component_still_runs(
    component_runtime: Runtime, py_vlpr: CircuitComponent, records: CircuitDB
) -> None:
    record = run_account(component_runtime, py_vlpr, records, "loop", LimitsProfile(timeout_ms=300))
    assert record.status == "timeout", record.error
    assert not record.committed
    record = run_account(component_runtime, py_vlpr, records, "loop", LimitsProfile(fuel=50_000_000))
    assert record.status == "limit_exceeded" and record.error is not None
    assert record.error["resource"] == "fuel"
    # a trapped instance is never reused: the next execution gets a fresh one and succeeds
    record = run_account(component_runtime, py_vlpr, records, "usage", LimitsProfile())
    assert record.status == "ok", record.error
    assert record.output == {"queries": [0, 100]}


def test_dml_then_exception_rolls_back(
    component_runtime: Runtime, py_vlpr: CircuitComponent, records: CircuitDB
) -> None:
    record = run_account(component_runtime, py_vlpr, records, "dml_then_raise", LimitsProfile())
    assert record.status == "error"
    assert record.error is not None and "ValueError: boom after DML" in record.error["message"]
    assert not record.committed
    assert task_count(records) == 0


def test_query_error_is_catchable(component_runtime: Runtime, py_vlpr: CircuitComponent, records: CircuitDB) -> None:
    record = run_account(component_runtime, py_vlpr, records, "catch_query_error", LimitsProfile())
    assert record.status == "ok", record.error
    assert record.output["caught"]
    assert any("caught:" in entry.message for entry in record.logs)


def test_host_call_flood_hits_the_governor_uncatchably(
    component_runtime: Runtime, py_vlpr: CircuitComponent, records: CircuitDB
) -> None:
    record = run_account(component_runtime, py_vlpr, records, "flood", LimitsProfile(queries=20))
    assert record.status == "limit_exceeded", (record.status, record.output, record.error)
    assert record.error is not None and record.error["resource"] == "queries"


def test_memory_bomb_is_stopped(component_runtime: Runtime, py_vlpr: CircuitComponent, records: CircuitDB) -> None:
    record = run_account(component_runtime, py_vlpr, records, "membomb", LimitsProfile(memory_bytes=64 * 1024 * 1024))
    # CPython inside the guest sees the refused memory.grow as a MemoryError: reported as the
    # memory limit, rolled back. The host process is unaffected.
    assert record.status == "limit_exceeded", (record.status, record.error)
    assert record.error is not None and record.error["resource"] == "memory_bytes"
    assert "MemoryError" in record.error["message"]
    assert not record.committed


def test_large_event_round_trips_through_the_bytes_fast_path(
    component_runtime: Runtime, py_vlpr: CircuitComponent, records: CircuitDB
) -> None:
    rows = [{"Blob": "é€x" * 30_000, "N": i, "F": 1.5, "B": None} for i in range(3)]
    event = encode({"kind": "trigger", "object": "Echo", "operation": "after_insert", "new": rows})
    assert len(event) > 100_000
    with make_context(records, label="echo") as context:
        outcome = component_runtime.invoke(py_vlpr, event, context)
    assert outcome.status == "ok", outcome.error_message
    assert outcome.output == rows
