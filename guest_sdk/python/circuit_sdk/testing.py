"""Tests for circuits: callout mocks, test records, fresh limits, failures.

Write tests as plain functions named ``test_*`` in ``tests.py`` beside ``circuit.py`` and use
``assert``. ``circuit test`` runs them twice: natively under pytest (with coverage.py) and
inside the sandbox, each test in a fresh instance, governor and rolled-back transaction::

    from circuit_sdk import records, testing

    def test_new_contact_is_scored():
        census = testing.mock_callout("https://census.example/*", json={"median_income": 90000})
        [contact_id] = testing.create_records("Contact", fields={"LastName": "Ng"})
        row = records.query("SELECT VLPR_Score__c FROM Contact WHERE Id = :id", id=contact_id)[0]
        assert row["VLPR_Score__c"] > 0
        assert census.calls == 1

Only tests may use this module: a production build links no ``testing`` interface.
"""

from __future__ import annotations

import json as json_module
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

from . import _bindings
from .errors import CircuitError, DmlError
from .msgpack import packb, unpackb


class TestingError(CircuitError):
    """A malformed mock or an unknown mock id."""

    __test__ = False


@dataclass(frozen=True)
class MockResponse:
    """One canned response. ``body`` may be bytes or str; ``json`` is serialised for you."""

    status: int = 200
    body: bytes | str = b""
    headers: Mapping[str, str] | None = None
    json: Any = None

    def spec(self) -> dict[str, Any]:
        headers = dict(self.headers or {})
        body: bytes | str = self.body
        if self.json is not None:
            body = json_module.dumps(self.json)
            headers.setdefault("content-type", "application/json")
        return {"status": self.status, "headers": headers, "body": body}


@dataclass(frozen=True)
class CalloutRequest:
    """A request a mock answered."""

    method: str
    url: str
    headers: dict[str, str]
    body: bytes


class Mock:
    """A registered callout mock; ``calls`` and ``requests`` ask the host what it answered."""

    def __init__(self, mock_id: int) -> None:
        self.id = mock_id

    def _report(self) -> dict[str, Any]:
        ok, value = _bindings.unwrap(_bindings.interface("testing").mock_calls, packb(self.id))
        if not ok:
            raise TestingError(value)
        report: dict[str, Any] = unpackb(value)
        return report

    @property
    def calls(self) -> int:
        return int(self._report()["calls"])

    @property
    def requests(self) -> list[CalloutRequest]:
        return [
            CalloutRequest(r["method"], r["url"], dict(r.get("headers") or {}), bytes(r.get("body") or b""))
            for r in self._report()["requests"]
        ]


def mock_callout(
    url: str,
    *,
    method: str | None = None,
    status: int = 200,
    body: bytes | str = b"",
    headers: Mapping[str, str] | None = None,
    json: Any = None,
    responses: Sequence[MockResponse] | None = None,
) -> Mock:
    """Answer callouts whose URL matches the glob ``url`` (and ``method``, if given).

    One response, or ``responses`` one per call (the last repeats). The most recently
    registered matching mock answers; a callout no mock matches fails the test.
    """
    spec: dict[str, Any] = {"url": url}
    if method is not None:
        spec["method"] = method.upper()
    if responses is not None:
        spec["responses"] = [r.spec() for r in responses]
    else:
        spec["response"] = MockResponse(status, body, headers, json).spec()
    ok, value = _bindings.unwrap(_bindings.interface("testing").mock_callout, packb(spec))
    if not ok:
        raise TestingError(value)
    return Mock(int(unpackb(value)))


def create_records(object_name: str, count: int = 1, fields: Mapping[str, Any] | None = None) -> list[str]:
    """Insert ``count`` test records; required fields not given get defaults, ``{n}`` in a
    str value becomes the row's index. Runs as DML: charged, and it fires triggers."""
    template = {"count": count, "fields": dict(fields or {})}
    ok, value = _bindings.unwrap(_bindings.interface("testing").create_records, object_name, packb(template))
    if not ok:
        raise DmlError(value)
    return list(unpackb(value))


def start_test() -> None:
    """Apex's ``Test.startTest``: the code until ``stop_test`` runs with fresh governor counters."""
    _bindings.interface("testing").start_test()


def stop_test() -> None:
    """Apex's ``Test.stopTest``: restore the counters from before ``start_test``."""
    _bindings.interface("testing").stop_test()


@contextmanager
def fresh_limits() -> Iterator[None]:
    """``with testing.fresh_limits(): ...`` is ``start_test()`` ... ``stop_test()``."""
    start_test()
    try:
        yield
    finally:
        stop_test()


def fail(message: str) -> None:
    """Fail the running test now; no ``except`` in the circuit can catch it."""
    _bindings.interface("testing").fail(str(message))
