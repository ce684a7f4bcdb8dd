"""``http.callout``: allowlisted outbound HTTP, charged before it leaves the host.

Every call counts as a callout, refused or not (Apex counts them the same way). A URL
outside the execution's allowlist is answered with ``err`` and never reaches the
connector; neither does a header that steers the connection (``Host``, hop-by-hop and
proxy headers), which the guest may not choose. Time spent is charged to
``callout_time_ms``; a callout's timeout is bounded by both that budget and the
execution's deadline, because the epoch deadline cannot interrupt a host call in progress.
"""

from __future__ import annotations

import time
from typing import Any

from ..abi.codec import decode, encode
from ..connectors.http_client import CalloutRequest, CalloutTimeout
from ..errors import CalloutError, ExecutionTimeout, LimitExceeded
from ..execution.context import ExecutionContext

DEFAULT_TIMEOUT_MS = 10_000
_METHODS = frozenset({"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE"})
# Headers the connector sets from the URL and the body; a guest's value would redirect a named
# credential's secret to another virtual host or smuggle a second request.
_DROPPED_HEADERS = frozenset(
    {"host", "connection", "keep-alive", "te", "trailer", "transfer-encoding", "upgrade", "content-length", "expect"}
)


def _guest_may_set(header: str) -> bool:
    name = header.strip().lower()
    return name not in _DROPPED_HEADERS and not name.startswith("proxy-")


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
    headers = {name: value for name, value in headers.items() if _guest_may_set(name)}
    return CalloutRequest(method.upper(), url, headers, body), timeout_ms


def callout(context: ExecutionContext, request_payload: bytes) -> bytes:
    governor, session = context.governor, context.http
    payload = decode(request_payload, "http.callout request")
    governor.charge("callouts")
    request, requested_ms = _parse_request(payload)
    resolved = session.resolve(request)
    request, label = resolved.request, resolved.label
    if resolved.credential is None and not session.allows(url := resolved.url):
        context.log.event("CALLOUT", f"{label} -> refused: not allowed")
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
        try:
            # The span names the credential, never its endpoint; headers and bodies are never observed.
            where = (
                {"circuit.callout.credential": resolved.credential}
                if resolved.credential is not None
                else {"server.address": resolved.url.host}
            )
            with context.log.timed("CALLOUT", label, {"http.request.method": request.method, **where}) as span:
                response = session.connector.send(
                    request, timeout_ms / 1000, session.max_response_bytes, session.allowed_networks
                )
                span.outcome = f" -> {response.status}"
        except CalloutError as exc:  # the connector's words, named as the guest named the request
            raise type(exc)(f"{label} {exc}") from None
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
