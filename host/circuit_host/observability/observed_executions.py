"""The ``ExecutionObserver`` the server installs: one span per execution, a child span per host call
and trigger, and the execution's metrics, all labelled for one tenant environment.

Spans carry bounded, non-secret facts only: the SOQL text, a DML's operation, object and rows, a
callout's method and host (or the named credential's name), a trigger's binding; never headers,
bodies or a credential's endpoint.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass

from opentelemetry.trace import SpanKind, Status, StatusCode, Tracer

from ..execution.execution_observer import ObservedExecution, ObservedStep
from .metrics import CircuitMetrics
from .tracing import trace_id_of

MAX_ATTRIBUTE_CHARS = 2048  # a SOQL text quoted in a span, as in the debug log
HOST_CALL_KINDS = frozenset({"query", "dml", "callout"})
_SPAN_NAMES = {"query": "records.query", "dml": "records.dml", "callout": "http.callout", "trigger": "trigger"}


@dataclass(frozen=True)
class ExecutionLabels:
    """Who an execution ran for: the metric labels and the execution span's attributes."""

    tenant: str
    environment: str
    circuit: str  # the environment's deployed circuits, as the stored execution names them
    trigger_kind: str  # the event's source: a webhook source, or ``api`` for the records API


class ObservedExecutions:
    def __init__(self, metrics: CircuitMetrics, tracer: Tracer, labels: ExecutionLabels) -> None:
        self.metrics = metrics
        self.tracer = tracer
        self.labels = labels

    @contextmanager
    def execution(self, execution_id: str, label: str) -> Iterator[ObservedExecution]:
        labels = self.labels
        attributes = {
            "circuit.execution.id": execution_id,
            "circuit.execution.label": label,
            "circuit.tenant": labels.tenant,
            "circuit.environment": labels.environment,
            "circuit.circuit": labels.circuit,
            "circuit.trigger_kind": labels.trigger_kind,
        }
        with self.tracer.start_as_current_span(
            "circuit.execution", attributes=attributes, record_exception=False, set_status_on_exception=False
        ) as span:
            observed = ObservedExecution(trace_id=trace_id_of(span))
            try:
                yield observed
            except BaseException as exc:  # a host bug the executor did not classify
                span.set_status(Status(StatusCode.ERROR, type(exc).__name__))
                raise
            span.set_attribute("circuit.status", observed.status)
            if observed.status != "ok":
                span.set_status(Status(StatusCode.ERROR, observed.status))
        self._count(observed)

    def _count(self, observed: ObservedExecution) -> None:
        labels = self.labels
        metrics = self.metrics
        metrics.executions.labels(
            labels.tenant, labels.environment, labels.circuit, labels.trigger_kind, observed.status
        ).inc()
        metrics.execution_duration.labels(labels.tenant, labels.environment, labels.circuit).observe(
            observed.duration_ms / 1000
        )
        for resource, usage in observed.usage.items():
            if usage.limit > 0:
                metrics.governor_usage.labels(resource).observe(usage.used / usage.limit)

    @contextmanager
    def step(self, step: ObservedStep) -> Iterator[ObservedStep]:
        name = _SPAN_NAMES.get(step.kind, step.kind)
        kind = SpanKind.CLIENT if step.kind == "callout" else SpanKind.INTERNAL
        started = time.monotonic()
        with self.tracer.start_as_current_span(
            name, kind=kind, record_exception=False, set_status_on_exception=False
        ) as span:
            try:
                yield step
            except BaseException as exc:
                step.outcome = "error"
                span.set_status(Status(StatusCode.ERROR, type(exc).__name__))
                raise
            finally:
                for key, value in step.attributes.items():
                    span.set_attribute(key, value[:MAX_ATTRIBUTE_CHARS] if isinstance(value, str) else value)
                span.set_attribute("circuit.outcome", step.outcome)
                if step.outcome != "ok":
                    span.set_status(Status(StatusCode.ERROR, step.outcome))
                self._count_step(step, time.monotonic() - started)

    def _count_step(self, step: ObservedStep, seconds: float) -> None:
        if step.kind in HOST_CALL_KINDS:
            self.metrics.host_calls.labels(step.kind, "ok" if step.outcome == "ok" else "error").inc()
            self.metrics.host_call_duration.labels(step.kind).observe(seconds)
        elif step.kind == "trigger":
            self.metrics.trigger_runs.labels(step.outcome).inc()
