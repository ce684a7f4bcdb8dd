"""Outbound HTTP for callouts: the only code that opens connections for a guest.

The connector knows nothing of governors or allowlists (the ``http`` capability decides
whether a request may go); it enforces what must hold on the wire: no redirects
followed (a redirect could leave the allowlist), no proxy settings from the
environment, no connection to a private, loopback or reserved address unless the operator
allowed its network (``callout_destinations``), a timeout, and a cap on the response size
read from the socket. Its messages never repeat the URL: the caller names the request.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Iterable
from dataclasses import dataclass

import httpcore
import httpx
from opentelemetry.trace.propagation.tracecontext import TraceContextTextMapPropagator

from ..errors import CalloutError
from .callout_destinations import GuardedBackend, Lookup, Network, system_lookup

_TRACE_CONTEXT = TraceContextTextMapPropagator()  # W3C traceparent, as the server reads it
_TRACE_HEADERS = frozenset({"traceparent", "tracestate"})


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


class _GuardedTransport(httpx.HTTPTransport):
    """httpx's transport over a connection pool whose network backend checks each address."""

    def __init__(self, allowed: tuple[Network, ...], lookup: Lookup) -> None:
        super().__init__(trust_env=False)
        self._pool = httpcore.ConnectionPool(
            ssl_context=httpx.create_ssl_context(trust_env=False), network_backend=GuardedBackend(allowed, lookup)
        )


class HttpConnector:
    """Sends callouts through ``httpx.Client``s; ``transport`` is the seam tests may plug into.

    ``allowed_networks`` are private networks callouts may reach on this host (an operator's
    choice, e.g. a test suite's loopback servers); ``send`` adds a tenant's own. Each set of
    allowed networks has its own client, so a pooled connection never crosses tenants' rules.
    ``lookup`` resolves names (the system's resolver; a seam for tests), within the timeout.
    """

    def __init__(
        self,
        transport: httpx.BaseTransport | None = None,
        allowed_networks: Iterable[Network] = (),
        lookup: Lookup = system_lookup,
    ) -> None:
        self._transport = transport
        self.allowed_networks = tuple(allowed_networks)
        self._lookup = lookup
        self._clients: dict[frozenset[Network], httpx.Client] = {}
        self._lock = threading.Lock()

    def _client(self, allowed_networks: Iterable[Network]) -> httpx.Client:
        key = frozenset((*self.allowed_networks, *allowed_networks))
        if self._transport is not None:
            key = frozenset()  # a mock transport connects nowhere
        with self._lock:
            client = self._clients.get(key)
            if client is None:
                client = httpx.Client(
                    transport=self._transport or _GuardedTransport(tuple(key), self._lookup),
                    follow_redirects=False,
                    trust_env=False,
                    headers={"user-agent": "circuit-script/1"},
                )
                self._clients[key] = client
        return client

    def send(
        self,
        request: CalloutRequest,
        timeout_s: float,
        max_response_bytes: int,
        allowed_networks: Iterable[Network] = (),
    ) -> CalloutResponse:
        """Send ``request``; the whole exchange, body included, must finish within ``timeout_s``.

        ``allowed_networks`` are the tenant's private networks this request may reach too. Inside a
        trace (the callout's span), the request carries its W3C ``traceparent``.
        """
        trace: dict[str, str] = {}
        _TRACE_CONTEXT.inject(trace)  # nothing outside a trace; then a guest's own traceparent passes
        headers = {k: v for k, v in request.headers.items() if not (trace and k.lower() in _TRACE_HEADERS)} | trace
        deadline = time.monotonic() + timeout_s
        try:
            with self._client(allowed_networks).stream(
                request.method,
                request.url,
                headers=headers,
                content=request.body,
                timeout=httpx.Timeout(timeout_s),
            ) as response:
                body = bytearray()
                for chunk in response.iter_bytes():
                    body += chunk
                    if time.monotonic() > deadline:  # a server dripping bytes cannot hold us
                        raise httpx.ReadTimeout("total callout time exceeded")
                    if len(body) > max_response_bytes:
                        raise CalloutError(f"failed: response body exceeds the cap of {max_response_bytes} bytes")
                return CalloutResponse(response.status_code, dict(response.headers.items()), bytes(body))
        except httpx.TimeoutException:
            raise CalloutTimeout(f"timed out after {timeout_s:.3f} s") from None
        except httpx.NetworkError as exc:  # the OS's words (refused, unreachable), never a header
            raise CalloutError(f"failed: {type(exc).__name__}: {exc}") from None
        except httpx.HTTPError as exc:
            raise CalloutError(f"failed: {type(exc).__name__}") from None

    def close(self) -> None:
        with self._lock:
            clients, self._clients = list(self._clients.values()), {}
        for client in clients:
            client.close()
