"""Callout mocks at the connector seam: matched by method and URL glob, never the network."""

from __future__ import annotations

import pytest

from circuit_host.connectors.http_client import CalloutRequest, HttpConnector
from circuit_host.errors import CalloutError
from circuit_host.testing import CalloutMocks, UnmatchedCallout


def send(mocks: CalloutMocks, method: str, url: str, body: bytes | None = None) -> tuple[int, bytes]:
    connector = HttpConnector(transport=mocks.transport())
    try:
        response = connector.send(CalloutRequest(method, url, {}, body), 1.0, 1024)
    finally:
        connector.close()
    return response.status, response.body


def test_a_mock_answers_matching_callouts_and_records_them() -> None:
    mocks = CalloutMocks()
    mock = mocks.register({"method": "post", "url": "https://census.example/*", "response": {"body": "hi"}})
    assert send(mocks, "POST", "https://census.example/v1/income?x=1", b"zips") == (200, b"hi")
    assert [(r["method"], r["url"], r["body"]) for r in mock.requests] == [
        ("POST", "https://census.example/v1/income?x=1", b"zips")
    ]


def test_a_sequence_is_answered_in_turn_and_the_last_repeats() -> None:
    mocks = CalloutMocks()
    mocks.register({"url": "https://a.example/*", "responses": [{"status": 500}, {"status": 200, "body": b"ok"}]})
    assert [send(mocks, "GET", "https://a.example/x")[0] for _ in range(4)] == [500, 200, 200, 200]


def test_the_latest_matching_mock_wins() -> None:
    mocks = CalloutMocks()
    mocks.register({"url": "https://a.example/*", "response": {"status": 201}})
    mocks.register({"url": "https://a.example/special", "response": {"status": 202}})
    assert send(mocks, "GET", "https://a.example/special")[0] == 202
    assert send(mocks, "GET", "https://a.example/other")[0] == 201


def test_an_unmatched_callout_raises_and_is_remembered() -> None:
    mocks = CalloutMocks()
    mocks.register({"method": "POST", "url": "https://a.example/*", "response": {}})
    with pytest.raises(
        UnmatchedCallout, match=r"GET https://a.example/x \(registered mocks: POST https://a.example/\*\)"
    ):
        send(mocks, "GET", "https://a.example/x")
    assert len(mocks.unmatched) == 1


@pytest.mark.parametrize(
    ("spec", "message"),
    [
        ("nope", "must be a map"),
        ({"url": "https://a/*"}, "exactly one of response or responses"),
        ({"url": "https://a/*", "response": {}, "responses": [{}]}, "exactly one of response or responses"),
        ({"url": "", "response": {}}, "url must be a non-empty glob"),
        ({"url": "https://a/*", "method": "BREW", "response": {}}, "method must be one of"),
        ({"url": "https://a/*", "response": {"status": 42}}, "status must be an int from 100 to 599"),
        ({"url": "https://a/*", "responses": []}, "responses must be a non-empty array"),
        ({"url": "https://a/*", "response": {"body": 3}}, "body must be bin or str"),
        ({"url": "https://a/*", "response": {}, "delay": 1}, "unknown field"),
    ],
)
def test_malformed_specs_are_refused(spec: object, message: str) -> None:
    with pytest.raises(CalloutError, match=message):
        CalloutMocks().register(spec)


def test_unknown_mock_ids_are_refused() -> None:
    mocks = CalloutMocks()
    mocks.register({"url": "*", "response": {}})
    assert mocks.get(1).id == 1
    for bad in (0, 2, True, "1"):
        with pytest.raises(CalloutError, match="no callout mock"):
            mocks.get(bad)


def test_named_credentials_in_tests_point_at_a_mockable_placeholder() -> None:
    from circuit_host.execution.callout_policy import NamedCredential
    from circuit_host.testing.runner import test_credential_url
    from circuit_host.testing.state import TestCalloutSession

    mocks = CalloutMocks()
    mock = mocks.register({"url": "https://census.named-credential.test/*", "response": {"body": "mocked"}})
    connector = HttpConnector(transport=mocks.transport())
    session = TestCalloutSession(connector, credentials={"census": NamedCredential(url=test_credential_url("census"))})
    resolved = session.resolve(CalloutRequest("GET", "callout:census/income?zip=94105", {}, None))
    assert resolved.credential == "census"
    assert resolved.request.url == "https://census.named-credential.test/income?zip=94105"
    response = connector.send(resolved.request, 1.0, 1024)
    assert (response.status, response.body) == (200, b"mocked")
    assert len(mock.requests) == 1
    with pytest.raises(CalloutError, match="no named credential 'payroll'"):
        session.resolve(CalloutRequest("GET", "callout:payroll/x", {}, None))
