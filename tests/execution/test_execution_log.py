"""What an execution stores of its debug log is bounded, whatever the guest sends (issue 11, item 10)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from circuit_host.execution.execution_log import MAX_HOST_MESSAGE_CHARS, ExecutionLog
from circuit_host.execution.executions import Executor


def test_a_host_entry_quoting_guest_input_is_cut_to_a_bounded_length() -> None:
    log = ExecutionLog("x")
    with log.timed("QUERY", "SELECT " + "A" * 100_000):
        pass
    (entry,) = log.entries
    assert len(entry.message) < MAX_HOST_MESSAGE_CHARS + 64
    assert entry.message.endswith("more characters)")


def test_past_its_budget_the_log_counts_entries_instead_of_keeping_them_but_keeps_its_brackets() -> None:
    log = ExecutionLog("x", max_bytes=50_000)
    log.event("EXECUTION_START", "start")
    for _ in range(1_000):
        log.event("CODE_UNIT_STARTED", "B" * 1_000)
    log.event("LIMIT_USAGE", "usage")
    log.event("EXECUTION_END", "status ok")
    events = [entry.event for entry in log.entries]
    assert events[0] == "EXECUTION_START" and events[-2:] == ["LIMIT_USAGE", "EXECUTION_END"]
    assert events.count("LOG_TRUNCATED") == 1
    assert log.dropped > 900
    assert f"({log.dropped} log entries not kept)" in log.entries[-1].message
    assert len(log.render()) < 60_000


def test_a_guest_repeating_a_huge_soql_text_stores_a_bounded_debug_log(
    executor: Executor, load_guest: Callable[[str], Any]
) -> None:
    record = executor.run(load_guest("long_soql_flood"), None)
    assert record.status == "limit_exceeded"
    assert record.error is not None and record.error["resource"] == "queries"
    queries = record.usage["queries"].used
    assert queries >= 50
    assert len(record.debug_log) < queries * (MAX_HOST_MESSAGE_CHARS + 300)  # not queries * 50,000
