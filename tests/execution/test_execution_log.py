"""What an execution stores of its debug log is bounded and charged, whatever the guest sends
(issue 11, item 10): every kept line counts against ``log_bytes``, so the log stored is never
larger than the usage reported; the host's own lines are dropped, never fatal, once it is spent."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest

from circuit_host.errors import LimitExceeded
from circuit_host.execution.execution_log import LINE_BYTES, MAX_HOST_MESSAGE_CHARS, ExecutionLog
from circuit_host.execution.executions import ExecutionOptions, Executor
from circuit_host.execution.governor import Governor
from circuit_host.execution.limits import LimitsProfile


def new_log(log_bytes: int = 1024 * 1024, max_bytes: int | None = None) -> ExecutionLog:
    governor = Governor(LimitsProfile(log_bytes=log_bytes))
    return ExecutionLog("x", governor) if max_bytes is None else ExecutionLog("x", governor, max_bytes=max_bytes)


def stored_bytes(log: ExecutionLog) -> int:
    return len(log.render().encode("utf-8"))


def test_a_host_entry_quoting_guest_input_is_cut_to_a_bounded_length() -> None:
    log = new_log()
    with log.timed("QUERY", "SELECT " + "A" * 100_000):
        pass
    (entry,) = log.entries
    assert len(entry.message) < MAX_HOST_MESSAGE_CHARS + 64
    assert entry.message.endswith("more characters)")


def test_every_kept_line_is_charged_its_message_and_a_line_the_hosts_as_the_guests() -> None:
    log = new_log()
    log.event("EXECUTION_START", "start")
    log.write("info", "héllo from the guest")
    with log.timed("QUERY", "SELECT Id FROM Account") as span:
        span.rows = 3_000_000
    log.event("EXECUTION_END", "status ok")
    messages = len("start") + len("héllo from the guest".encode()) + len("SELECT Id FROM Account") + len("status ok")
    assert log.governor.used("log_bytes") == 4 * LINE_BYTES + messages
    assert stored_bytes(log) < log.governor.used("log_bytes")


def test_host_lines_past_log_bytes_are_dropped_with_a_mark_and_never_fail_the_execution() -> None:
    log = new_log(log_bytes=5_000)
    log.event("EXECUTION_START", "start")
    for _ in range(100):
        with log.timed("QUERY", "SELECT " + "A" * 1_000):
            pass
    log.event("LIMIT_USAGE", "usage")
    log.event("EXECUTION_END", "status ok")
    events = [entry.event for entry in log.entries]
    assert events.count("QUERY") == 4 and events.count("LOG_TRUNCATED") == 1
    assert events[0] == "EXECUTION_START" and events[-2:] == ["LIMIT_USAGE", "EXECUTION_END"]
    assert f"({log.dropped} log entries not kept)" in log.entries[-1].message and log.dropped == 96
    assert stored_bytes(log) <= log.governor.used("log_bytes") <= 5_000 + 2 * LINE_BYTES + 1_024 + 100


def test_a_guest_line_over_log_bytes_fails_and_is_not_kept() -> None:
    log = new_log(log_bytes=1_000)
    log.write("info", "x" * 500)
    with pytest.raises(LimitExceeded) as info:
        log.write("info", "y" * 500)
    assert info.value.resource == "log_bytes"
    assert [entry.message[0] for entry in log.entries] == ["x"]
    assert stored_bytes(log) <= log.governor.used("log_bytes") < 1_000


def test_past_its_stored_cap_the_log_counts_entries_instead_of_keeping_them_but_keeps_its_brackets() -> None:
    log = new_log(max_bytes=50_000)
    log.event("EXECUTION_START", "start")
    for _ in range(1_000):
        log.event("CODE_UNIT_STARTED", "B" * 1_000)
        log.write("debug", "C" * 100)  # within log_bytes but over the stored cap: dropped, uncharged
    log.fatal("limit_exceeded: queries")
    log.event("LIMIT_USAGE", "usage")
    log.event("EXECUTION_END", "status ok")
    events = [entry.event for entry in log.entries]
    assert events[0] == "EXECUTION_START" and events[-3:] == ["FATAL_ERROR", "LIMIT_USAGE", "EXECUTION_END"]
    assert events.count("LOG_TRUNCATED") == 1
    assert log.dropped > 1_900
    assert stored_bytes(log) <= log.governor.used("log_bytes") < 51_000 + 2_000


def test_a_guest_repeating_a_huge_soql_text_stores_exactly_the_log_bytes_it_reports(
    executor: Executor, load_guest: Callable[[str], Any]
) -> None:
    record = executor.run(load_guest("long_soql_flood"), None)
    assert record.status == "limit_exceeded"
    assert record.error is not None and record.error["resource"] == "queries"
    queries = record.usage["queries"].used
    assert queries >= 50
    assert len(record.debug_log.encode()) <= record.usage["log_bytes"].used
    assert len(record.debug_log) < queries * (MAX_HOST_MESSAGE_CHARS + 300)  # not queries * 50,000


def test_with_a_small_log_bytes_the_host_lines_are_truncated_not_the_execution(
    executor: Executor, load_guest: Callable[[str], Any]
) -> None:
    options = ExecutionOptions(limits=LimitsProfile(log_bytes=10_000))
    record = executor.run(load_guest("long_soql_flood"), None, options)
    assert record.error is not None and record.error["resource"] == "queries"  # not log_bytes
    stored = len(record.debug_log.encode())
    assert stored <= record.usage["log_bytes"].used <= 10_000 + 3_000  # the closing lines may pass the limit
    assert "|LOG_TRUNCATED|" in record.debug_log and "|FATAL_ERROR|limit_exceeded" in record.debug_log
