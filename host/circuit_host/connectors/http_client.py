"""Outbound HTTP for callouts: the only code that opens connections for a guest.

The connector knows nothing of governors or allowlists (the ``http`` capability decides
whether a request may go); it enforces what must hold on the wire: no redirects
followed (a redirect could leave the allowlist), no proxy settings from the
environment, a timeout, and a cap on the response size read from the socket.
"""

from __future__ import annotations

import time
from dataclasses import dataclass

import httpx

from ..errors import CalloutError


@dataclass(frozen=True)
class CalloutRequest:
    method: str
    url: str
    headers: dict[str, str]
    body: bytes | None


@dataclass(frozen=True)
class CalloutResponse:
    status: int
    headers: dict[str, str]
    body: bytes


class CalloutTimeout(CalloutError):
    """The request did not complete within the timeout it was given."""


class HttpConnector:
    """Sends callouts through one ``httpx.Client``; ``transport`` is the seam tests may plug into."""

    def __init__(self, transport: httpx.BaseTransport | None = None) -> None:
        self._client = httpx.Client(
            transport=transport,
            follow_redirects=False,
            trust_env=False,
            headers={"user-agent": "circuit-script/1"},
        )

    def send(self, request: CalloutRequest, timeout_s: float, max_response_bytes: int) -> CalloutResponse:
        """Send ``request``; the whole exchange, body included, must finish within ``timeout_s``."""
        deadline = time.monotonic() + timeout_s
        try:
            with self._client.stream(
                request.method,
                request.url,
                headers=request.headers,
                content=request.body,
                timeout=httpx.Timeout(timeout_s),
            ) as response:
                body = bytearray()
                for chunk in response.iter_bytes():
                    body += chunk
                    if time.monotonic() > deadline:  # a server dripping bytes cannot hold us
                        raise httpx.ReadTimeout("total callout time exceeded")
                    if len(body) > max_response_bytes:
                        raise CalloutError(f"response body exceeds the cap of {max_response_bytes} bytes")
                return CalloutResponse(response.status_code, dict(response.headers.items()), bytes(body))
        except httpx.TimeoutException:
            raise CalloutTimeout(f"{request.method} {request.url} timed out after {timeout_s:.3f} s") from None
        except httpx.HTTPError as exc:
            raise CalloutError(f"{request.method} {request.url} failed: {type(exc).__name__}: {exc}") from None

    def close(self) -> None:
        self._client.close()
