"""The runner: every test in a fresh store and a rolled-back transaction, classified pass/fail/error."""

from __future__ import annotations

import pytest

from circuit_host.circuitdb import CircuitDB
from circuit_host.errors import Rejected
from circuit_host.testing import TestRunner
from circuit_host.testing.runner import TestBudget

# The lab circuit's tests (tests/testing/circuits/lab/tests.zig) and what each must give.
EXPECTED = {
    "mock_sequence": ("pass", None),
    "unmatched_callout": ("fail", "unmatched callout in a test: GET https://api.example/ping (registered mocks: none)"),
    "method_must_match": (
        "fail",
        "unmatched callout in a test: GET https://api.example/ping (registered mocks: POST https://api.example/ping)",
    ),
    "latest_mock_wins": ("pass", None),
    "unknown_mock_id": ("fail", "mock-calls: no callout mock with id 42"),
    "factory_defaults": ("pass", None),
    "factory_contact_defaults": ("pass", None),
    "factory_bad_object": ("fail", "create-records: no object 'Nope__c'"),
    "start_stop_resets_limits": ("pass", None),
    "without_start_limits_bite": (
        "error",
        "limit_exceeded: limit exceeded: queries (used 100, requested 1, limit 100)",
    ),
    "stop_without_start": ("fail", "stop-test called without start-test"),
    "isolation_writes": ("pass", None),
    "isolation_reads": ("pass", None),
    "assert_message": ("fail", 'Grade: expected "A", got "B"'),
    "hard_fail": ("fail", "stopped at 3"),
    "traps": ("error", "trap: wasm trap: wasm `unreachable` instruction executed (unreachable) (panic: kaboom)"),
    "uncaught_query_error": ("fail", "QueryFailed: line 1, column 8: no field 'Nope' on Account"),
}


def test_list_tests_gives_the_declared_names_in_order(lab_runner: TestRunner) -> None:
    assert lab_runner.list_tests() == list(EXPECTED)


@pytest.mark.parametrize("name", list(EXPECTED))
def test_each_outcome_is_classified_with_its_message(lab_runner: TestRunner, name: str) -> None:
    result = lab_runner.run(name)
    assert (result.status, result.message) == EXPECTED[name]


def test_run_all_reports_counts_and_fails_overall(lab_runner: TestRunner) -> None:
    report = lab_runner.run_all()
    assert not report.passed
    assert report.counts() == {"pass": 7, "fail": 8, "error": 2}
    document = report.to_json()
    assert document["tests"][0]["name"] == "mock_sequence"
    assert document["tests"][0]["usage"]["callouts"] == {"used": 3, "limit": 100}


def test_an_unknown_test_name_fails(lab_runner: TestRunner) -> None:
    result = lab_runner.run("no_such_test")
    assert (result.status, result.message) == ("fail", "no test named no_such_test")


@pytest.mark.parametrize("order", [["isolation_writes", "isolation_reads"], ["isolation_reads", "isolation_writes"]])
def test_tests_never_see_each_others_records(lab_runner: TestRunner, order: list[str]) -> None:
    assert lab_runner.run_all(order).passed


def test_nothing_a_test_writes_is_committed(lab_runner: TestRunner, lab_records: CircuitDB) -> None:
    assert lab_runner.run_all(["isolation_writes", "factory_defaults", "mock_sequence"]).passed
    transaction = lab_records.begin()
    try:
        for soql in ("SELECT COUNT() FROM Account", "SELECT COUNT() FROM Contact", "SELECT COUNT() FROM Widget__c"):
            assert transaction.query(soql, {}, max_rows=10).total_size == 0
    finally:
        transaction.rollback()
        transaction.close()


def test_the_log_of_a_test_shows_the_trigger_it_fired(lab_runner: TestRunner) -> None:
    result = lab_runner.run("mock_sequence")
    events = [entry.event for entry in result.logs]
    assert "CODE_UNIT_STARTED" in events and "CALLOUT" in events


def test_a_store_observer_sees_the_test_store_and_every_trigger_store(lab_runner: TestRunner) -> None:
    seen: list[list[str]] = []
    lab_runner.runtime.store_observer = lambda store, instance: seen.append(sorted(instance.exports(store).keys()))
    try:
        assert lab_runner.run("mock_sequence").status == "pass"  # one test store, one trigger store
    finally:
        lab_runner.runtime.store_observer = None
    assert len(seen) == 2 and all("run-test" in exports for exports in seen)


def test_a_budget_refuses_too_many_tests_or_too_long_a_run(lab_runner: TestRunner) -> None:
    """The deploy gate runs inside a request: 20 spinning tests used to hold it 10.6 s (issue 11, item 6)."""
    names = lab_runner.list_tests()
    with pytest.raises(Rejected, match=f"{len(names)} tests, over the limit of 2"):
        lab_runner.run_all(budget=TestBudget(max_tests=2, max_seconds=60))
    with pytest.raises(Rejected, match="the tests ran over"):
        lab_runner.run_all(budget=TestBudget(max_tests=100, max_seconds=0.000001))
    report = lab_runner.run_all(names[:2], budget=TestBudget(max_tests=2, max_seconds=60))
    assert [result.name for result in report.results] == names[:2]
