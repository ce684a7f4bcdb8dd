"""Outbound HTTP, restricted to the execution's host allowlist."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from . import _bindings
from .errors import CalloutError
from .msgpack import packb, unpackb


@dataclass(frozen=True)
class Response:
    status: int
    headers: dict[str, str] = field(default_factory=dict)
    body: bytes = b""

    @property
    def ok(self) -> bool:
        return 200 <= self.status < 300

    def text(self) -> str:
        return self.body.decode("utf-8")

    def msgpack(self) -> Any:
        return unpackb(self.body)


def request(
    method: str,
    url: str,
    headers: dict[str, str] | None = None,
    body: bytes | str | None = None,
    timeout_ms: int | None = None,
) -> Response:
    """Send one request; any HTTP status is a ``Response``. Raises ``CalloutError`` on failure."""
    message: dict[str, Any] = {"method": method.upper(), "url": url}
    if headers:
        message["headers"] = dict(headers)
    if body is not None:
        message["body"] = body.encode("utf-8") if isinstance(body, str) else bytes(body)
    if timeout_ms is not None:
        message["timeout_ms"] = timeout_ms
    ok, value = _bindings.unwrap(_bindings.interface("http").callout, packb(message))
    if not ok:
        raise CalloutError(value)
    reply = unpackb(value)
    return Response(reply["status"], reply.get("headers") or {}, reply.get("body") or b"")


def get(url: str, **kwargs: Any) -> Response:
    return request("GET", url, **kwargs)


def post(url: str, body: bytes | str | None = None, **kwargs: Any) -> Response:
    return request("POST", url, body=body, **kwargs)
