"""Callout mocks (``Test.setMock``): an ``httpx`` transport that answers callouts from registered mocks.

The mocks plug into the connector seam (``HttpConnector(transport=...)``), so a test's callout goes
through the whole ``http`` capability (charged, logged, timed) and only the wire is replaced. A
callout that no mock matches never reaches the network: it ends the test as a failure.
"""

from __future__ import annotations

import fnmatch
from dataclasses import dataclass, field
from typing import Any

import httpx

from ..errors import CalloutError, GuestFault

_METHODS = frozenset({"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE"})


class UnmatchedCallout(GuestFault):
    """A callout in a test that no mock answers; uncatchable, so the circuit cannot hide it."""

    kind = "unmatched_callout"


@dataclass(frozen=True)
class MockResponse:
    status: int = 200
    headers: dict[str, str] = field(default_factory=dict)
    body: bytes = b""


@dataclass
class CalloutMock:
    """One registered mock: method (None = any) and URL glob, and the responses it gives in turn."""

    id: int
    method: str | None
    url: str
    responses: tuple[MockResponse, ...]
    requests: list[dict[str, Any]] = field(default_factory=list)

    def matches(self, method: str, url: str) -> bool:
        return (self.method is None or self.method == method) and fnmatch.fnmatchcase(url, self.url)

    def answer(self, request: httpx.Request) -> MockResponse:
        index = min(len(self.requests), len(self.responses) - 1)  # the last response repeats
        self.requests.append(
            {
                "method": request.method,
                "url": str(request.url),
                "headers": {k: v for k, v in request.headers.items() if k.lower() != "user-agent"},
                "body": request.content,
            }
        )
        return self.responses[index]


def _response(value: Any, where: str) -> MockResponse:
    if not isinstance(value, dict):
        raise CalloutError(f"{where} must be a map with status, headers, body")
    unknown = set(value) - {"status", "headers", "body"}
    if unknown:
        raise CalloutError(f"{where}: unknown field(s) {', '.join(sorted(unknown))}")
    status = value.get("status", 200)
    if not isinstance(status, int) or isinstance(status, bool) or not 100 <= status <= 599:
        raise CalloutError(f"{where}: status must be an int from 100 to 599")
    headers = value.get("headers") or {}
    if not isinstance(headers, dict) or not all(isinstance(k, str) and isinstance(v, str) for k, v in headers.items()):
        raise CalloutError(f"{where}: headers must be a map of string to string")
    body = value.get("body") or b""
    if isinstance(body, str):
        body = body.encode("utf-8")
    if not isinstance(body, bytes):
        raise CalloutError(f"{where}: body must be bin or str")
    return MockResponse(status, dict(headers), body)


class CalloutMocks:
    """The mocks of one test, and the callouts nothing matched."""

    def __init__(self) -> None:
        self.mocks: list[CalloutMock] = []
        self.unmatched: list[str] = []

    def register(self, spec: Any) -> CalloutMock:
        """Add a mock from its msgpack spec (abi/circuit-test.wit ``mock-callout``); later mocks win."""
        if not isinstance(spec, dict):
            raise CalloutError("mock spec must be a map with url and response or responses")
        unknown = set(spec) - {"method", "url", "response", "responses"}
        if unknown:
            raise CalloutError(f"mock spec: unknown field(s) {', '.join(sorted(unknown))}")
        method, url = spec.get("method"), spec.get("url")
        if method is not None and (not isinstance(method, str) or method.upper() not in _METHODS):
            raise CalloutError(f"mock spec: method must be one of {', '.join(sorted(_METHODS))}")
        if not isinstance(url, str) or not url:
            raise CalloutError("mock spec: url must be a non-empty glob pattern")
        single, sequence = spec.get("response"), spec.get("responses")
        if (single is None) == (sequence is None):
            raise CalloutError("mock spec: give exactly one of response or responses")
        if sequence is not None:
            if not isinstance(sequence, list) or not sequence:
                raise CalloutError("mock spec: responses must be a non-empty array")
            responses = tuple(_response(r, f"mock spec: responses[{i}]") for i, r in enumerate(sequence))
        else:
            responses = (_response(single, "mock spec: response"),)
        mock = CalloutMock(len(self.mocks) + 1, method.upper() if method else None, url, responses)
        self.mocks.append(mock)
        return mock

    def get(self, mock_id: Any) -> CalloutMock:
        if isinstance(mock_id, int) and not isinstance(mock_id, bool) and 1 <= mock_id <= len(self.mocks):
            return self.mocks[mock_id - 1]
        raise CalloutError(f"no callout mock with id {mock_id!r}")

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        url = str(request.url)
        for mock in reversed(self.mocks):
            if mock.matches(request.method, url):
                response = mock.answer(request)
                return httpx.Response(response.status, headers=response.headers, content=response.body)
        registered = "; ".join(f"{m.method or '*'} {m.url}" for m in self.mocks) or "none"
        message = f"unmatched callout in a test: {request.method} {url} (registered mocks: {registered})"
        self.unmatched.append(message)
        raise UnmatchedCallout(message)

    def transport(self) -> httpx.MockTransport:
        return httpx.MockTransport(self.handle_request)
