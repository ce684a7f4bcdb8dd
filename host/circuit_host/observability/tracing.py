"""OpenTelemetry tracing: off unless the standard ``OTEL_*`` variables turn it on.

``tracer_provider_from_environment`` is called once by ``circuit serve`` with the process
environment (the edge); the SDK and the OTLP/HTTP exporter then read their own ``OTEL_*``
settings (endpoint, headers, service name, sampler) as their documentation describes. Without a
provider the API's no-op tracer is used: spans cost nothing, and a caller's ``traceparent`` is still
carried through to the execution record and to callouts.
"""

from __future__ import annotations

from collections.abc import Mapping

from opentelemetry import trace
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import BatchSpanProcessor
from opentelemetry.trace import Span
from opentelemetry.trace.propagation.tracecontext import TraceContextTextMapPropagator

TRACER_NAME = "circuit_host"
# W3C Trace Context only: ``traceparent``/``tracestate`` in, and out on callouts.
TRACE_CONTEXT = TraceContextTextMapPropagator()
_ENDPOINTS = ("OTEL_EXPORTER_OTLP_ENDPOINT", "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT")


def tracing_wanted(environ: Mapping[str, str]) -> bool:
    """Tracing is on when an OTLP endpoint is set, unless the SDK or the traces exporter is disabled."""
    if environ.get("OTEL_SDK_DISABLED", "").strip().lower() == "true":
        return False
    if environ.get("OTEL_TRACES_EXPORTER", "otlp").strip().lower() == "none":
        return False
    return any(environ.get(name, "").strip() for name in _ENDPOINTS)


def tracer_provider_from_environment(environ: Mapping[str, str]) -> TracerProvider | None:
    """A provider exporting spans over OTLP/HTTP in batches, or None when tracing is off."""
    if not tracing_wanted(environ):
        return None
    from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter

    service = environ.get("OTEL_SERVICE_NAME", "").strip() or "circuit-script"
    provider = TracerProvider(resource=Resource.create({"service.name": service}))
    provider.add_span_processor(BatchSpanProcessor(OTLPSpanExporter()))
    return provider


def install_tracer_provider(provider: TracerProvider) -> None:
    """Make ``provider`` the process's (once per process, as the OpenTelemetry API allows)."""
    trace.set_tracer_provider(provider)


def trace_id_of(span: Span) -> str | None:
    """The span's trace id as 32 hex digits, or None when there is no trace."""
    context = span.get_span_context()
    return trace.format_trace_id(context.trace_id) if context.is_valid else None
