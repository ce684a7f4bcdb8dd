"""``http.callout``: allowlisted outbound HTTP, charged before it leaves the host.

Every call counts as a callout, refused or not (Apex counts them the same way). A URL
outside the execution's allowlist is answered with ``err`` and never reaches the
connector. Time spent is charged to ``callout_time_ms``; a callout's timeout is bounded
by both that budget and the execution's deadline, because the epoch deadline cannot
interrupt a host call in progress.
"""

from __future__ import annotations

import time
from typing import Any

import httpx

from ..abi.codec import decode, encode
from ..connectors.http_client import CalloutRequest, CalloutTimeout
from ..errors import CalloutError, ExecutionTimeout, LimitExceeded
from ..execution.context import ExecutionContext

DEFAULT_TIMEOUT_MS = 10_000
_METHODS = frozenset({"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE"})


def _parse_request(payload: Any) -> tuple[CalloutRequest, int]:
    if not isinstance(payload, dict):
        raise CalloutError("request must be a map with method and url")
    unknown = set(payload) - {"method", "url", "headers", "body", "timeout_ms"}
    if unknown:
        raise CalloutError(f"unknown request field(s): {', '.join(sorted(unknown))}")
    method, url = payload.get("method"), payload.get("url")
    if not isinstance(method, str) or method.upper() not in _METHODS:
        raise CalloutError(f"method must be one of {', '.join(sorted(_METHODS))}")
    if not isinstance(url, str):
        raise CalloutError("url must be a string")
    headers = payload.get("headers") or {}
    if not isinstance(headers, dict) or not all(isinstance(k, str) and isinstance(v, str) for k, v in headers.items()):
        raise CalloutError("headers must be a map of string to string")
    body = payload.get("body")
    if isinstance(body, str):
        body = body.encode("utf-8")
    if body is not None and not isinstance(body, bytes):
        raise CalloutError("body must be bin, str or nil")
    timeout_ms = payload.get("timeout_ms", DEFAULT_TIMEOUT_MS)
    if not isinstance(timeout_ms, int) or isinstance(timeout_ms, bool) or timeout_ms <= 0:
        raise CalloutError("timeout_ms must be a positive integer")
    return CalloutRequest(method.upper(), url, headers, body), timeout_ms


def callout(context: ExecutionContext, request_payload: bytes) -> bytes:
    governor, session = context.governor, context.http
    payload = decode(request_payload, "http.callout request")
    governor.charge("callouts")
    request, requested_ms = _parse_request(payload)
    request, named = session.resolve(request)
    try:
        url = httpx.URL(request.url)
    except httpx.InvalidURL as exc:
        raise CalloutError(f"invalid url {request.url!r}: {exc}") from None
    if not named and not session.allows(url):
        context.log.event("CALLOUT", f"{request.method} {url.scheme}://{url.host}{url.path} -> refused: not allowed")
        raise CalloutError(f"callout to {url.scheme}://{url.host} is not allowed for this circuit")
    budget_ms = governor.remaining("callout_time_ms")
    deadline_ms = governor.time_left_ms()
    if budget_ms <= 0:
        raise LimitExceeded("callout_time_ms", governor.used("callout_time_ms"), 1, governor.limit("callout_time_ms"))
    if deadline_ms <= 0:
        raise ExecutionTimeout("execution deadline passed before the callout")
    timeout_ms = min(requested_ms, budget_ms, deadline_ms)
    started = time.monotonic()
    try:
        with context.log.timed("CALLOUT", f"{request.method} {url.scheme}://{url.host}{url.path}") as span:
            response = session.connector.send(request, timeout_ms / 1000, session.max_response_bytes)
            span.outcome = f" -> {response.status}"
    except CalloutTimeout:
        if timeout_ms == requested_ms:
            raise
        if timeout_ms == budget_ms:
            raise LimitExceeded(
                "callout_time_ms", governor.used("callout_time_ms"), budget_ms + 1, governor.limit("callout_time_ms")
            ) from None
        raise ExecutionTimeout("execution deadline reached during a callout") from None
    finally:
        spent = int((time.monotonic() - started) * 1000)
        governor.record(
            "callout_time_ms", min(governor.limit("callout_time_ms"), governor.used("callout_time_ms") + spent)
        )
    return encode({"status": response.status, "headers": response.headers, "body": response.body})
