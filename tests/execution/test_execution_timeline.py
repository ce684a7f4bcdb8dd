"""The timeline kept with an execution: one step per host call and trigger run, nested, bounded."""

from __future__ import annotations

import time

import pytest

from circuit_host.execution.execution_log import ExecutionLog
from circuit_host.execution.execution_timeline import ExecutionTimeline
from circuit_host.execution.governor import Governor
from circuit_host.execution.limits import LimitsProfile


def log_with(timeline: ExecutionTimeline, log_bytes: int = 1024 * 1024) -> ExecutionLog:
    return ExecutionLog("e1", Governor(LimitsProfile(log_bytes=log_bytes)), observer=timeline)


def test_steps_are_timed_and_nested_in_start_order() -> None:
    timeline = ExecutionTimeline()
    with timeline.execution("e1", "insert 1 Contact"):
        log = log_with(timeline)
        with log.timed("DML", "INSERT Contact") as outer:
            outer.rows = 1
            with log.code_unit("lpr@1.0.0 Contact.after_insert", "depth 1, 1 records", {"circuit.records": 1}) as unit:
                with log.timed("QUERY", "SELECT Id FROM Contact") as query:
                    time.sleep(0.01)
                    query.rows = 3
                with log.timed("CALLOUT", "GET https://example.test/x"):
                    pass
                unit.status = "ok"
    steps = timeline.as_list()
    assert [(s["kind"], s["name"], s["depth"]) for s in steps] == [
        ("dml", "INSERT Contact", 0),
        ("trigger", "lpr@1.0.0 Contact.after_insert", 1),
        ("query", "SELECT Id FROM Contact", 2),
        ("callout", "GET https://example.test/x", 2),
    ]
    dml, trigger, query, callout = steps
    assert query["duration_ms"] >= 10 and query["rows"] == 3 and dml["rows"] == 1 and trigger["rows"] == 1
    assert dml["start_ms"] <= trigger["start_ms"] <= query["start_ms"] < callout["start_ms"]
    assert query["start_ms"] + query["duration_ms"] <= callout["start_ms"] + 0.01
    assert dml["duration_ms"] >= trigger["duration_ms"] >= query["duration_ms"]
    assert all(s["outcome"] == "ok" for s in steps)


def test_a_failed_step_and_a_failed_trigger_keep_their_outcome() -> None:
    timeline = ExecutionTimeline()
    log = log_with(timeline)
    with log.code_unit("lpr@1.0.0 Contact.after_insert", "depth 1", {}) as unit:
        with pytest.raises(RuntimeError), log.timed("DML", "UPDATE Contact"):
            raise RuntimeError("refused")
        unit.status = "limit_exceeded"
    assert [(s.kind, s.outcome) for s in timeline.steps] == [("trigger", "limit_exceeded"), ("dml", "error")]


def test_only_the_first_steps_are_kept_even_when_the_log_drops_lines() -> None:
    timeline = ExecutionTimeline(max_steps=5)
    log = log_with(timeline, log_bytes=2000)  # the debug log keeps only a few of these lines
    for n in range(12):
        with log.timed("QUERY", f"SELECT Id FROM Contact -- {n} " + "x" * 200):
            pass
    assert log.dropped > 0
    assert [s.name.split("-- ")[1].split()[0] for s in timeline.steps] == ["0", "1", "2", "3", "4"]
    assert timeline.dropped == 7
