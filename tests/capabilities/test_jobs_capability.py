"""``jobs.enqueue`` (ABI 1.1.0): charged to ``async_jobs``, enqueued only when the execution commits.

A WAT guest calls the import; the jobs go through the server's ``QueueSink`` into a real embedded
queue on a SQLite file, so "enqueued" means a stored job.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
import wasmtime

from circuit_host.abi.host_functions import ABI_FUNCTIONS
from circuit_host.circuitdb import CircuitDB
from circuit_host.circuitdb.manifest import read_schema
from circuit_host.connectors.http_client import HttpConnector
from circuit_host.execution.executions import ExecutionOptions, Executor
from circuit_host.execution.limits import LimitsProfile
from circuit_host.execution.trigger_events import run_trigger_event
from circuit_host.jobs import EmbeddedJobQueue, JobFilter
from circuit_host.sandbox.runtime import Runtime
from circuit_host.server.async_circuits import QUEUEABLE_KIND, QueueSink

EXAMPLE = Path(__file__).resolve().parents[2] / "examples" / "virtual_lpr"
GUEST = Path(__file__).parent / "guests" / "enqueue.wat"
VLPR_1_0 = Path(__file__).resolve().parents[1] / "abi" / "modules" / "virtual_lpr-1.0.0.wasm"


@pytest.fixture
def queue(tmp_path: Path) -> Iterator[EmbeddedJobQueue]:
    q = EmbeddedJobQueue(tmp_path / "platform.sqlite3")
    yield q
    q.close()


@pytest.fixture
def guest(runtime: Runtime) -> object:
    return runtime.load(wasmtime.wat2wasm(GUEST.read_text()))


def sink(queue: EmbeddedJobQueue, depth: int = 0, max_depth: int = 5) -> QueueSink:
    return QueueSink(queue, "t1", "production", {"enrich": "2.0.0"}, depth, max_depth)


def event(count: int, mode: int, circuit: str = "enrich") -> bytes:
    return bytes([count, mode]) + circuit.encode()


def stored(queue: EmbeddedJobQueue) -> list[object]:
    return list(queue.list_jobs(JobFilter(tenant_id="t1")))


def test_an_enqueue_becomes_a_job_when_the_execution_commits(
    executor: Executor, guest: object, queue: EmbeddedJobQueue
) -> None:
    record = executor.run(guest, event(2, 0), ExecutionOptions(jobs=sink(queue)))  # type: ignore[arg-type]
    assert record.status == "ok" and record.committed
    jobs = sorted(queue.list_jobs(JobFilter(tenant_id="t1")), key=lambda j: j.id)
    assert [(j.kind, j.circuit, j.env, j.key) for j in jobs] == [
        (QUEUEABLE_KIND, "enrich", "production", f"exec:{record.id}:0"),
        (QUEUEABLE_KIND, "enrich", "production", f"exec:{record.id}:1"),
    ]
    assert jobs[0].payload == {"version": "2.0.0", "payload": {"n": 1}, "depth": 1}
    assert record.usage["async_jobs"].used == 2
    assert f"JOB_ENQUEUE|exec:{record.id}:0: enrich" in record.debug_log


@pytest.mark.parametrize("mode", [1, 2], ids=["err", "trap"])
def test_a_rolled_back_execution_enqueues_nothing(
    executor: Executor, guest: object, queue: EmbeddedJobQueue, mode: int
) -> None:
    record = executor.run(guest, event(3, mode), ExecutionOptions(jobs=sink(queue)))  # type: ignore[arg-type]
    assert record.status == ("error" if mode == 1 else "trap") and not record.committed
    assert stored(queue) == []


def test_the_async_jobs_limit_ends_the_execution_and_enqueues_nothing(
    executor: Executor, guest: object, queue: EmbeddedJobQueue
) -> None:
    limits = LimitsProfile().with_overrides({"async_jobs": 2})
    record = executor.run(guest, event(3, 0), ExecutionOptions(limits=limits, jobs=sink(queue)))  # type: ignore[arg-type]
    assert record.status == "limit_exceeded"
    assert record.error is not None and record.error["resource"] == "async_jobs"
    assert stored(queue) == []
    assert LimitsProfile().async_jobs == 50


def test_the_chain_depth_limit_is_an_err_the_guest_sees(
    executor: Executor, guest: object, queue: EmbeddedJobQueue
) -> None:
    at_limit = ExecutionOptions(jobs=sink(queue, depth=5, max_depth=5))
    record = executor.run(guest, event(1, 0), at_limit)  # type: ignore[arg-type]
    assert record.status == "error"
    assert record.error is not None and "job chain depth limit reached" in record.error["message"]
    one_below = executor.run(guest, event(1, 0), ExecutionOptions(jobs=sink(queue, depth=4, max_depth=5)))  # type: ignore[arg-type]
    assert one_below.status == "ok"
    assert [j.payload["depth"] for j in stored(queue)] == [5]  # type: ignore[attr-defined]


def test_an_unknown_circuit_is_an_err(executor: Executor, guest: object, queue: EmbeddedJobQueue) -> None:
    record = executor.run(guest, event(1, 0, "nope"), ExecutionOptions(jobs=sink(queue)))  # type: ignore[arg-type]
    assert record.status == "error"
    assert record.error is not None and "no active circuit 'nope'" in record.error["message"]
    assert stored(queue) == []


def test_without_a_queue_enqueues_are_recorded_and_nothing_runs(executor: Executor, guest: object) -> None:
    """A local run (``circuit run``) or a test: the call succeeds and is charged; no job exists."""
    record = executor.run(guest, event(1, 0, "anything"), ExecutionOptions())  # type: ignore[arg-type]
    assert record.status == "ok" and record.usage["async_jobs"].used == 1


def test_a_1_0_0_module_still_runs_unchanged(runtime: Runtime, records: CircuitDB) -> None:
    """Today's Virtual LPR bytes (built before ABI 1.1.0, kept in tests/abi/modules) import only 1.0.0
    names; on this host they load, link and score a Contact as they always did."""
    wasm = VLPR_1_0.read_bytes()
    assert b"circuit:script/jobs" not in wasm
    assert any(f.module == "circuit:script/jobs@1.1.0" for f in ABI_FUNCTIONS)
    records.apply_schema(read_schema(EXAMPLE / "circuit.toml"))
    contact = {
        "LastName": "Raman",
        "Title": "Chief Revenue Officer",
        "Email": "priya.raman@northwindlogistics.com",
        "Company_Size__c": 450,
        "Website_Visits__c": 14,
        "Emails_Opened__c": 3,
        "Called_Business__c": True,
        "LeadSource": "Referral",
    }
    event = {"kind": "trigger", "object": "Contact", "operation": "after_insert", "new": [contact]}
    record = run_trigger_event(Executor(runtime, records, HttpConnector()), runtime.load(wasm), event)
    assert record.status == "ok" and record.committed, record.error
    with records.begin() as tx:
        rows = tx.query("SELECT VLPR_Score__c, VLPR_Grade__c FROM Contact", {}, max_rows=10).records
    assert [(r["VLPR_Score__c"], r["VLPR_Grade__c"]) for r in rows] == [(86, "A")]
    assert record.usage["async_jobs"].used == 0
