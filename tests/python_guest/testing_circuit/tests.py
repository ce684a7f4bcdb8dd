"""Every outcome `circuit test` can report; the tests named ``test_fails_*``/``test_errors_*`` must not pass."""

from __future__ import annotations

import contextlib

from circuit import tier
from circuit_sdk import http, limits, records, testing


def test_passes_and_fires_the_trigger() -> None:
    ids = testing.create_records("Contact", count=3, fields={"LastName": "T{n}", "Website_Visits__c": 12})
    rows = records.query("SELECT Tier__c FROM Contact WHERE Id IN :ids", ids=ids)
    assert [row["Tier__c"] for row in rows] == ["hot"] * 3


def test_passes_with_a_mocked_callout() -> None:
    mock = testing.mock_callout("https://api.example/*", json={"ok": True})
    response = http.get("https://api.example/ping")
    assert response.status == 200 and response.text() == '{"ok": true}'
    assert mock.calls == 1 and mock.requests[0].url == "https://api.example/ping"


def test_passes_with_fresh_limits() -> None:
    for _ in range(15):
        records.query("SELECT Id FROM Contact")
    with testing.fresh_limits():
        records.query("SELECT Id FROM Contact")
        assert limits.usage()["queries"][0] == 1
    assert limits.usage()["queries"][0] == 15  # stop_test restores the counters from before


def test_passes_because_earlier_tests_rolled_back() -> None:
    assert records.query("SELECT COUNT() FROM Contact").total_size == 0
    assert tier(0) == "cold"


def test_fails_on_an_assertion() -> None:
    assert tier(5) == "hot", "five visits is only warm"


def test_fails_on_an_unmatched_callout() -> None:
    with contextlib.suppress(Exception):  # even swallowed, an unmatched callout fails the test
        http.get("https://unmocked.example/")


def test_fails_through_testing_fail() -> None:
    with contextlib.suppress(Exception):  # not catchable
        testing.fail("explicit failure")


def test_errors_on_a_governor_limit() -> None:
    with contextlib.suppress(Exception):  # a governor limit is not catchable either
        for _ in range(50):
            records.query("SELECT Id FROM Contact")


def test_fails_on_an_unexpected_exception() -> None:
    {}["missing"]
