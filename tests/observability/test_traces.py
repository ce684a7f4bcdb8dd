"""The span tree of a Virtual LPR execution, exported by the SDK's in-memory exporter.

The server's path: a Contact insert from outside fires the example's ``after_insert`` trigger, which
queries its settings, calls the census server on loopback and writes back. One span for the
execution, one for the host's DML, the trigger nested in it, and a span per host call the trigger
makes, with their bounded attributes; the callout carries the trace to the census server.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from opentelemetry import trace
from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from prometheus_client import CollectorRegistry

from circuit_host.circuitdb import CircuitDB, open_store
from circuit_host.circuitdb.manifest import read_schema
from circuit_host.connectors.http_client import HttpConnector
from circuit_host.connectors.records import DmlOp
from circuit_host.execution.callout_policy import HostPattern
from circuit_host.execution.executions import ExecutionOptions, Executor
from circuit_host.observability import CircuitMetrics, ExecutionLabels, ObservedExecutions
from circuit_host.sandbox.runtime import CircuitModule, Runtime
from circuit_host.toolchain.zig_build import build_circuit
from circuit_host.triggers import TriggerBinding, TriggerRegistry
from tests.conftest import LOOPBACK_NETWORKS, LoopbackServer
from tests.examples.test_virtual_lpr import EXAMPLE, census, configure_census, contacts


@pytest.fixture(scope="module")
def vlpr(runtime: Runtime, tmp_path_factory: pytest.TempPathFactory) -> CircuitModule:
    return runtime.load(build_circuit(EXAMPLE, tmp_path_factory.mktemp("vlpr-build")).read_bytes())


@pytest.fixture
def store(tmp_path: Path) -> Iterator[CircuitDB]:
    opened = open_store(tmp_path / "records.db", tenant=f"vlpr-{uuid.uuid4().hex[:8]}")
    opened.apply_schema(read_schema(EXAMPLE / "circuit.toml"))
    yield opened
    opened.close()


@pytest.fixture
def exporter() -> InMemorySpanExporter:
    return InMemorySpanExporter()


def traced_run(
    runtime: Runtime,
    vlpr: CircuitModule,
    store: CircuitDB,
    exporter: InMemorySpanExporter,
    allow: str,
    metrics: CircuitMetrics | None = None,
) -> Callable[[], object]:
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    registry = TriggerRegistry()
    registry.register("acme:production", TriggerBinding("virtual_lpr@1.0.0", "Contact", "after_insert", vlpr))
    observer = ObservedExecutions(
        metrics or CircuitMetrics(CollectorRegistry()),
        provider.get_tracer("test"),
        ExecutionLabels("acme", "production", "virtual_lpr", "api"),
    )
    http = HttpConnector(allowed_networks=LOOPBACK_NETWORKS)
    executor = Executor(runtime, store, http, triggers=registry, tenant="acme:production", observer=observer)
    options = ExecutionOptions(allowed_hosts=(HostPattern.parse(allow),))

    def run() -> object:
        try:
            return executor.apply_change(DmlOp.INSERT, "Contact", contacts(20), options)
        finally:
            http.close()

    return run


def tree(spans: tuple[ReadableSpan, ...]) -> list[tuple[int, str]]:
    """(depth, name) in start order: the waterfall a trace viewer draws."""
    by_id = {s.context.span_id: s for s in spans}

    def depth(span: ReadableSpan) -> int:
        return 0 if span.parent is None or span.parent.span_id not in by_id else 1 + depth(by_id[span.parent.span_id])

    return [(depth(s), s.name) for s in sorted(spans, key=lambda s: s.start_time or 0)]


def test_a_virtual_lpr_execution_is_one_trace_with_a_span_per_host_call_and_the_trigger_nested(
    runtime: Runtime,
    vlpr: CircuitModule,
    store: CircuitDB,
    exporter: InMemorySpanExporter,
    loopback: LoopbackServer,
) -> None:
    census(loopback)
    configure_census(store, f"{loopback.base}/census")
    traceparents: list[str | None] = []
    handler = loopback.routes["/census"]

    def remembering(request: object) -> None:
        traceparents.append(request.headers.get("traceparent"))  # type: ignore[attr-defined]
        handler(request)  # type: ignore[arg-type]

    loopback.routes["/census"] = remembering
    record = traced_run(runtime, vlpr, store, exporter, loopback.base)()

    assert record.status == "ok", record.error  # type: ignore[attr-defined]
    spans = exporter.get_finished_spans()
    assert tree(spans) == [
        (0, "circuit.execution"),
        (1, "records.dml"),  # the host's insert of the 20 contacts
        (2, "trigger"),  # fired by it
        (3, "records.query"),  # the census URL setting
        (3, "http.callout"),
        (3, "records.dml"),  # scores written back
        (3, "records.dml"),  # grade-A tasks
    ]
    assert len({s.context.trace_id for s in spans}) == 1
    execution = spans[-1] if spans[-1].name == "circuit.execution" else next(s for s in spans if s.parent is None)
    trace_id = trace.format_trace_id(execution.context.trace_id)
    assert record.trace_id == trace_id  # type: ignore[attr-defined]
    assert f"trace {trace_id}" in record.debug_log.splitlines()[0]  # type: ignore[attr-defined]
    attributes = {s.name: dict(s.attributes or {}) for s in spans if s.name != "records.dml"}
    assert attributes["circuit.execution"]["circuit.status"] == "ok"
    assert attributes["circuit.execution"]["circuit.tenant"] == "acme"
    assert attributes["trigger"]["circuit.trigger"] == "virtual_lpr@1.0.0"
    assert attributes["trigger"]["circuit.records"] == 20
    assert attributes["records.query"]["db.query.text"].startswith("SELECT")  # type: ignore[union-attr]
    assert attributes["http.callout"] == {
        "http.request.method": "POST",
        "server.address": "127.0.0.1",
        "circuit.outcome": "ok",
    }  # method and host only: no URL path, headers or body
    dml = [dict(s.attributes or {}) for s in spans if s.name == "records.dml"]
    assert dml[0]["circuit.dml.object"] == "Contact" and dml[0]["circuit.rows"] == 20
    assert {d["circuit.dml.object"] for d in dml} == {"Contact", "Task"}
    # The census server received the callout span's context.
    callout = next(s for s in spans if s.name == "http.callout")
    assert len(traceparents) == 1
    assert (traceparents[0] or "").startswith(f"00-{trace_id}-{trace.format_span_id(callout.context.span_id)}-")


def test_a_failing_callout_marks_its_span_and_the_execution_still_ends_ok(
    runtime: Runtime, vlpr: CircuitModule, store: CircuitDB, exporter: InMemorySpanExporter, loopback: LoopbackServer
) -> None:
    configure_census(store, f"{loopback.base}/census")
    loopback.close()  # nobody listens: the callout fails, the circuit logs it and scores without income
    metrics = CircuitMetrics(CollectorRegistry())
    record = traced_run(runtime, vlpr, store, exporter, loopback.base, metrics)()
    assert record.status == "ok", record.error  # type: ignore[attr-defined]
    callout = next(s for s in exporter.get_finished_spans() if s.name == "http.callout")
    assert callout.status.status_code == trace.StatusCode.ERROR
    assert dict(callout.attributes or {})["circuit.outcome"] == "error"
    registry = metrics.registry
    assert registry.get_sample_value("circuit_host_calls_total", {"kind": "callout", "outcome": "error"}) == 1
    assert (
        registry.get_sample_value("circuit_host_calls_total", {"kind": "dml", "outcome": "ok"}) == 2
    )  # no grade A: no Task insert
    assert registry.get_sample_value("circuit_trigger_runs_total", {"outcome": "ok"}) == 1
    labels = {"tenant": "acme", "environment": "production", "circuit": "virtual_lpr", "trigger_kind": "api"}
    assert registry.get_sample_value("circuit_executions_total", {**labels, "status": "ok"}) == 1
    assert registry.get_sample_value("circuit_governor_usage_ratio_count", {"resource": "callouts"}) == 1


def test_without_tracing_no_trace_id_is_invented(runtime: Runtime, vlpr: CircuitModule, store: CircuitDB) -> None:
    record = Executor(runtime, store, HttpConnector()).apply_change(DmlOp.INSERT, "Task", [{"Subject": "x"}])
    assert record.status == "ok" and record.trace_id is None
    assert " trace " not in record.debug_log.splitlines()[0]
