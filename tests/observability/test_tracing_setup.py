"""Tracing is off unless the OTEL_* variables turn it on; on, spans reach an OTLP/HTTP collector."""

from __future__ import annotations

from http.server import BaseHTTPRequestHandler

import pytest

from circuit_host.observability.tracing import tracer_provider_from_environment, tracing_wanted
from tests.conftest import LoopbackServer


@pytest.mark.parametrize(
    ("environ", "wanted"),
    [
        ({}, False),
        ({"OTEL_SERVICE_NAME": "x"}, False),  # naming a service is not asking for export
        ({"OTEL_EXPORTER_OTLP_ENDPOINT": "http://collector:4318"}, True),
        ({"OTEL_EXPORTER_OTLP_TRACES_ENDPOINT": "http://collector:4318/v1/traces"}, True),
        ({"OTEL_EXPORTER_OTLP_ENDPOINT": "http://collector:4318", "OTEL_SDK_DISABLED": "true"}, False),
        ({"OTEL_EXPORTER_OTLP_ENDPOINT": "http://collector:4318", "OTEL_TRACES_EXPORTER": "none"}, False),
        ({"OTEL_EXPORTER_OTLP_ENDPOINT": "  "}, False),
    ],
)
def test_tracing_is_on_only_with_an_otlp_endpoint(environ: dict[str, str], wanted: bool) -> None:
    assert tracing_wanted(environ) is wanted
    assert (tracer_provider_from_environment(environ) is not None) is wanted


def test_spans_are_exported_over_otlp_http_to_the_configured_collector(
    loopback: LoopbackServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    received: list[tuple[str, bytes]] = []

    def collector(request: BaseHTTPRequestHandler) -> None:
        received.append((request.headers.get("content-type", ""), request.body))  # type: ignore[attr-defined]
        request.send_response(200)
        request.send_header("content-length", "0")
        request.end_headers()

    loopback.routes["/v1/traces"] = collector
    environ = {"OTEL_EXPORTER_OTLP_ENDPOINT": loopback.base, "OTEL_SERVICE_NAME": "circuit-test"}
    for name, value in environ.items():  # the exporter reads its own settings, as circuit serve leaves them
        monkeypatch.setenv(name, value)
    provider = tracer_provider_from_environment(environ)
    assert provider is not None
    with provider.get_tracer("test").start_as_current_span("circuit.execution"):
        pass
    provider.shutdown()  # flushes the batch
    assert len(received) == 1
    content_type, body = received[0]
    assert content_type == "application/x-protobuf"
    assert b"circuit.execution" in body and b"circuit-test" in body
