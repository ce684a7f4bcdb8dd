"""Every HTTP request: a request id, the caller's trace context, a server span and the request metrics.

A pure ASGI middleware (it never blocks and never buffers a body), outermost in the app. The request
id is the caller's ``X-Request-Id`` when it is a plain token, else a fresh one; it is echoed in the
response and bound (structlog contextvars) to every log line the request causes, executions
included. A W3C ``traceparent`` from the caller becomes the parent of the request's span, so a
webhook's executions join the sender's trace. Metrics and spans name the route template
(``/v1/hooks/{source}/{token}``), never the raw path, which may hold a webhook token.
"""

from __future__ import annotations

import re
import time
import uuid
from collections.abc import Callable
from typing import Any

import structlog
from opentelemetry import context as otel_context
from opentelemetry.trace import SpanKind, Status, StatusCode, Tracer
from starlette.datastructures import Headers, MutableHeaders
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from .metrics import CircuitMetrics
from .tracing import TRACE_CONTEXT

REQUEST_ID_HEADER = "x-request-id"
_REQUEST_ID = re.compile(r"[A-Za-z0-9._:-]{1,128}")  # anything else could forge log lines
_METHODS = frozenset({"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"})
UNMATCHED_ROUTE = "unmatched"  # 404s for paths no route knows: one label value, not one per path
UNTRACED_PATHS = frozenset({"/livez", "/healthz", "/readyz", "/metrics"})  # probes and scrapes: no span noise


def request_id_of(headers: Headers) -> str:
    given = headers.get(REQUEST_ID_HEADER, "")
    return given if _REQUEST_ID.fullmatch(given) else uuid.uuid4().hex


def route_of(scope: Scope) -> str:
    route: Any = scope.get("route")
    path = getattr(route, "path", None)
    return path if isinstance(path, str) else UNMATCHED_ROUTE


class ObservedRequests:
    def __init__(self, app: ASGIApp, metrics: CircuitMetrics, tracer: Tracer) -> None:
        self.app = app
        self.metrics = metrics
        self.tracer = tracer

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        headers = Headers(scope=scope)
        request_id = request_id_of(headers)
        method = scope["method"] if scope["method"] in _METHODS else "OTHER"
        status = 500  # what the client sees if the app fails before answering

        async def send_with_id(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
                MutableHeaders(scope=message)[REQUEST_ID_HEADER] = request_id
            await send(message)

        started = time.monotonic()
        token = otel_context.attach(TRACE_CONTEXT.extract(headers))
        try:
            with structlog.contextvars.bound_contextvars(request_id=request_id):
                if scope["path"] in UNTRACED_PATHS:
                    await self.app(scope, receive, send_with_id)
                else:
                    await self._traced(scope, receive, send_with_id, method, lambda: status)
        finally:
            otel_context.detach(token)
            route = route_of(scope)
            self.metrics.http_requests.labels(method, route, str(status)).inc()
            self.metrics.http_request_duration.labels(method, route).observe(time.monotonic() - started)

    async def _traced(self, scope: Scope, receive: Receive, send: Send, method: str, status: Callable[[], int]) -> None:
        with self.tracer.start_as_current_span(
            method, kind=SpanKind.SERVER, record_exception=False, set_status_on_exception=False
        ) as span:
            try:
                await self.app(scope, receive, send)
            finally:
                route = route_of(scope)
                code = status()
                span.update_name(f"{method} {route}")
                span.set_attribute("http.request.method", method)
                span.set_attribute("http.route", route)
                span.set_attribute("http.response.status_code", code)
                if code >= 500:
                    span.set_status(Status(StatusCode.ERROR, str(code)))
