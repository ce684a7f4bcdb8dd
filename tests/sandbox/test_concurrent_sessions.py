"""Executions running at once on many threads each get exactly their own outcome and usage.

wasmtime-py hands a host function's exception back through a process-wide variable, so under
threads one execution's limit could surface in another's call. The sandbox classifies every call
from what its own host calls recorded on its own context, never from the exception that surfaced.
Here 8 threads run at once, round after round, half of them hitting a different limit (two raised
by the host inside a host call, two by wasmtime itself), and every result must be exactly the one
the same execution gives when it runs alone.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import msgpack

from circuit_host.execution.executions import ExecutionOptions, ExecutionRecord, Executor
from circuit_host.execution.limits import LimitsProfile

ROUNDS = 200
TIME_BASED = frozenset({"timeout_ms", "callout_time_ms"})  # wall-clock usage: not reproducible


@dataclass(frozen=True)
class Kind:
    guest: str
    event: Any
    limits: dict[str, int]


KINDS = {
    "echo": Kind("echo", {"n": 1, "text": "a" * 300}, {}),
    "echo_big": Kind("echo", {"rows": list(range(500))}, {}),
    "query_3": Kind("query_loop", msgpack.packb(3), {}),
    "query_5": Kind("query_loop", msgpack.packb(5), {}),
    "log_bytes": Kind("log_flood", None, {"log_bytes": 10_000}),  # raised by the host, in a host call
    "queries": Kind("query_loop", msgpack.packb(40), {"queries": 7}),  # raised by the host, in a host call
    "fuel": Kind("spin", None, {"fuel": 1_000_000}),  # wasmtime traps: out of fuel
    "memory_bytes": Kind("memory_bomb", None, {"memory_bytes": 2 * 1024 * 1024}),  # refused growth, then a trap
}


def fingerprint(record: ExecutionRecord) -> tuple[Any, ...]:
    """Everything about an execution that must not depend on what ran beside it."""
    usage = {name: u.used for name, u in record.usage.items() if name not in TIME_BASED}
    return record.status, record.error, record.output, record.committed, usage


def test_eight_threads_at_once_each_get_exactly_their_own_outcome(
    executor: Executor, load_guest: Callable[[str], Any]
) -> None:
    modules = {name: load_guest(kind.guest) for name, kind in KINDS.items()}

    def run(name: str) -> ExecutionRecord:
        kind = KINDS[name]
        options = ExecutionOptions(limits=LimitsProfile().with_overrides(kind.limits))
        return executor.run(modules[name], kind.event, options)

    alone = {name: fingerprint(run(name)) for name in KINDS}
    assert {name: alone[name][0] for name in KINDS} == {
        "echo": "ok",
        "echo_big": "ok",
        "query_3": "ok",
        "query_5": "ok",
        "log_bytes": "limit_exceeded",
        "queries": "limit_exceeded",
        "fuel": "limit_exceeded",
        "memory_bytes": "limit_exceeded",
    }
    for name in ("log_bytes", "queries", "fuel", "memory_bytes"):
        assert alone[name][1]["resource"] == name
    assert alone["query_3"][4]["queries"] == 3
    assert alone["queries"][4]["queries"] == 7

    names = list(KINDS)
    mismatches: list[str] = []
    for round_number in range(ROUNDS):
        start = threading.Barrier(len(names))
        results: dict[str, tuple[Any, ...]] = {}

        def worker(name: str, start: threading.Barrier, results: dict[str, tuple[Any, ...]]) -> None:
            start.wait(timeout=30)
            results[name] = fingerprint(run(name))

        threads = [threading.Thread(target=worker, args=(name, start, results)) for name in names]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(timeout=60)
        assert not any(thread.is_alive() for thread in threads), f"round {round_number}: a thread hung"
        mismatches += [
            f"round {round_number} {name}: {results.get(name)} != {alone[name]}"
            for name in names
            if results.get(name) != alone[name]
        ]
        names.reverse()  # vary who starts first
    assert not mismatches, "\n".join(mismatches[:10])
