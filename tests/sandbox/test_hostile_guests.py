"""Hostile guests end with the right status and a clear message, and the host carries on.

Every test ends by running a well-behaved guest in the same process: a hostile guest
must leave nothing behind that breaks the next execution.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest

from circuit_host.execution.executions import ExecutionOptions, ExecutionRecord, Executor
from circuit_host.execution.limits import LimitsProfile

Load = Callable[[str], Any]


def run(executor: Executor, module: Any, event: Any = None, **limits: int) -> ExecutionRecord:
    return executor.run(module, event, ExecutionOptions(limits=LimitsProfile().with_overrides(limits)))


@pytest.fixture(autouse=True)
def next_execution_still_works(executor: Executor, load_guest: Load) -> Any:
    yield
    record = run(executor, load_guest("echo"), {"still": "alive"})
    assert record.status == "ok", record.error
    assert record.output == {"still": "alive"}


def test_infinite_loop_in_handle_hits_the_wall_clock_deadline(executor: Executor, load_guest: Load) -> None:
    record = run(executor, load_guest("spin"), timeout_ms=200)
    assert record.status == "timeout"
    assert "200 ms" in record.error["message"]
    assert 150 <= record.duration_ms < 5000


def test_infinite_loop_runs_out_of_fuel_first_when_fuel_is_small(executor: Executor, load_guest: Load) -> None:
    record = run(executor, load_guest("spin"), fuel=5_000_000)
    assert record.status == "limit_exceeded"
    assert record.error["resource"] == "fuel"
    assert record.usage["fuel"].used == 5_000_000


def test_infinite_loop_in_start_function_is_stopped(executor: Executor, load_guest: Load) -> None:
    record = run(executor, load_guest("spin_start"), timeout_ms=200)
    assert record.status == "timeout"


def test_start_function_runs_under_fuel_too(executor: Executor, load_guest: Load) -> None:
    record = run(executor, load_guest("spin_start"), fuel=1_000_000)
    assert record.status == "limit_exceeded"
    assert record.error["resource"] == "fuel"


def test_memory_grow_bomb_stops_at_the_cap(executor: Executor, load_guest: Load) -> None:
    record = run(executor, load_guest("memory_bomb"), memory_bytes=2 * 1024 * 1024)
    assert record.status == "limit_exceeded"
    assert record.error["resource"] == "memory_bytes"
    assert record.usage["memory_bytes"].used <= 2 * 1024 * 1024


def test_deep_recursion_is_a_stack_overflow_trap(executor: Executor, load_guest: Load) -> None:
    record = run(executor, load_guest("recursion"))
    assert record.status == "trap"
    assert "stack" in record.error["message"]


def test_host_call_flood_is_ended_by_the_deadline(executor: Executor, load_guest: Load) -> None:
    record = run(executor, load_guest("usage_flood"), timeout_ms=300)
    assert record.status == "timeout"


def test_host_call_flood_is_ended_by_fuel(executor: Executor, load_guest: Load) -> None:
    record = run(executor, load_guest("usage_flood"), fuel=200_000)
    assert record.status == "limit_exceeded"
    assert record.error["resource"] == "fuel"


def test_log_flood_is_stopped_by_log_bytes(executor: Executor, load_guest: Load) -> None:
    record = run(executor, load_guest("log_flood"), log_bytes=10 * 1024)
    assert record.status == "limit_exceeded"
    assert record.error["resource"] == "log_bytes"
    guest_lines = [e for e in record.logs if e.source == "guest"]
    # 1,024 bytes and a line (128) each, after EXECUTION_START: the 9th line was refused before it was written
    assert len(guest_lines) == 8


ABUSES = {
    0: "outside guest memory",  # query soql pointer 0xFFFFFF00 (a negative int in Python)
    1: "outside guest memory",  # query binds length 0x7FFFFFFF
    2: "outside guest memory",  # query return area out of bounds
    3: "not 4-byte aligned",  # query return area misaligned
    4: "enum value 7 out of range",  # dml op
    5: "outside guest memory",  # dml object name
    6: "outside guest memory",  # dml rows at -16
    7: "outside guest memory",  # callout request
    8: "outside guest memory",  # callout return area
    9: "enum value 9 out of range",  # log level
    10: "outside guest memory",  # log message
    11: "outside guest memory",  # usage return area at -4
    12: "outside guest memory",  # handle's return area
    13: "invalid result discriminant 7",  # handle's discriminant
    14: "outside guest memory",  # handle's payload
    15: "invalid UTF-8",  # log message
    16: "malformed msgpack",  # query binds
    17: "malformed msgpack",  # dml rows
    18: "malformed msgpack",  # callout request
    19: "malformed msgpack",  # handle output
    20: "not valid UTF-8",  # handle err message
    21: "invalid UTF-8",  # query soql
}


@pytest.mark.parametrize("case", sorted(ABUSES))
def test_abi_abuse_traps_with_a_clear_message(executor: Executor, load_guest: Load, case: int) -> None:
    record = run(executor, load_guest("abuse"), case)
    assert record.status == "trap"
    assert ABUSES[case] in record.error["message"]
    assert not record.committed


def test_realloc_returning_garbage_traps(executor: Executor, load_guest: Load) -> None:
    record = run(executor, load_guest("realloc_garbage"))
    assert record.status == "trap"
    assert "cabi_realloc returned 0xfffffff0" in record.error["message"]


def test_realloc_returning_null_traps_before_handle(executor: Executor, load_guest: Load) -> None:
    record = run(executor, load_guest("realloc_null"), {"any": "event"})
    assert record.status == "trap"
    assert "cabi_realloc returned null" in record.error["message"]


def test_imports_from_inside_realloc_trap(executor: Executor, load_guest: Load) -> None:
    record = run(executor, load_guest("realloc_reenters"), {"any": "event"})
    assert record.status == "trap"
    assert "may not be called from cabi_realloc" in record.error["message"]


def test_realloc_calling_an_import_during_the_start_function_traps(executor: Executor, load_guest: Load) -> None:
    """The re-entrancy guard holds before the exports are looked up, too (issue 11, item 15)."""
    record = run(executor, load_guest("realloc_reenters_start"), {"any": "event"})
    assert record.status == "trap"
    assert "may not be called from cabi_realloc" in record.error["message"]
    assert not any(entry.source == "guest" for entry in record.logs)  # the nested log.write never ran


def test_a_second_memory_cannot_double_the_memory_cap(executor: Executor, load_guest: Load) -> None:
    """The store's memory limit is per memory: a circuit gets one, so the cap is the sum (issue 11, item 14)."""
    record = run(executor, load_guest("second_memory"), {"any": "event"}, memory_bytes=4 * 1024 * 1024)
    assert record.status == "limit_exceeded"
    assert record.error["resource"] == "memory_bytes"
    assert "memory" in record.error["message"]


def test_dml_then_trap_commits_nothing(executor: Executor, load_guest: Load) -> None:
    trapped = run(executor, load_guest("dml_then_trap"), 0)
    assert trapped.status == "trap"
    assert not trapped.committed
    counted = run(executor, load_guest("query_proxy"), b"SELECT COUNT() FROM Contact")
    assert counted.output["total_size"] == 0
    # The same guest without the trap commits its row: the test above could fail.
    saved = run(executor, load_guest("dml_then_trap"), 1)
    assert saved.status == "ok" and saved.committed
    counted = run(executor, load_guest("query_proxy"), b"SELECT COUNT() FROM Contact")
    assert counted.output["total_size"] == 1


def test_limit_breach_rolls_back_earlier_writes(executor: Executor, load_guest: Load) -> None:
    record = run(executor, load_guest("dml_then_trap"), 1, dml_rows=0)
    assert record.status == "limit_exceeded"
    assert record.error["resource"] == "dml_rows"
    counted = run(executor, load_guest("query_proxy"), b"SELECT COUNT() FROM Contact")
    assert counted.output["total_size"] == 0


def test_oversized_event_is_refused_before_the_guest_runs(executor: Executor, load_guest: Load) -> None:
    record = run(executor, load_guest("echo"), {"blob": "x" * 5000}, input_bytes=4096)
    assert record.status == "limit_exceeded"
    assert record.error["resource"] == "input_bytes"
    assert record.usage["fuel"].used == 0


def test_oversized_output_is_refused(executor: Executor, load_guest: Load) -> None:
    record = run(executor, load_guest("echo"), {"blob": "x" * 5000}, output_bytes=4096)
    assert record.status == "limit_exceeded"
    assert record.error["resource"] == "output_bytes"
