"""``testing``: mocks, test records, start/stop-test and fail, for test modules only.

Linked only by ``Runtime(testing=True)`` (``circuit test``, the deploy gate), never into the
production linker, so a production load rejects a module that imports it. The functions find
their per-test state on the ``TestExecutionContext``; called from any other context (a trigger
the test fired), they trap.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import wasmtime

from ..abi.codec import decode, encode
from ..abi.lowering import define_import
from ..abi.signatures import (
    TESTING_CREATE_RECORDS,
    TESTING_FAIL,
    TESTING_MOCK_CALLOUT,
    TESTING_MOCK_CALLS,
    TESTING_START_TEST,
    TESTING_STOP_TEST,
)
from ..errors import GuestFault
from ..testing.factories import create_records as build_and_insert
from ..testing.state import RESET_ON_START, TestExecutionContext, TestState
from . import records

if TYPE_CHECKING:
    from ..execution.context import ExecutionContext


class TestFailed(GuestFault):
    """``testing.fail``: ends the test; the runner reports it as a failure, not an error."""

    __test__ = False  # not a pytest test class

    kind = "test_failed"


def _state(context: ExecutionContext) -> TestState:
    if isinstance(context, TestExecutionContext) and context.testing is not None:
        return context.testing
    raise GuestFault("testing functions are available only to the test itself, not to the triggers it fires")


def _fail(state: TestState, message: str) -> TestFailed:
    state.failure = state.failure or message
    return TestFailed(message)


def mock_callout(context: ExecutionContext, spec: bytes) -> bytes:
    state = _state(context)
    return encode(state.mocks.register(decode(spec, "testing.mock-callout spec")).id)


def mock_calls(context: ExecutionContext, mock_id: bytes) -> bytes:
    mock = _state(context).mocks.get(decode(mock_id, "testing.mock-calls id"))
    return encode({"calls": len(mock.requests), "requests": mock.requests})


def create_records(context: ExecutionContext, object_name: str, template: bytes) -> bytes:
    state = _state(context)

    def insert(name: str, rows: list[dict[str, Any]]) -> list[str]:
        reply = decode(records.dml(context, 0, name, encode(rows)), "dml reply")
        return list(reply["ids"])

    return encode(build_and_insert(state.schema, object_name, decode(template, "testing.create-records"), insert))


def start_test(context: ExecutionContext) -> None:
    state = _state(context)
    if state.outer_usage is not None or state.test_usage is not None:
        raise _fail(state, "start-test may be called only once per test")
    governor = context.governor
    context.settle_fuel()
    state.outer_usage = {name: governor.used(name) for name in RESET_ON_START}
    for name in RESET_ON_START:
        governor.record(name, 0)
    _refuel(context)
    context.log.event("TEST_START", "governor counters reset")


def stop_test(context: ExecutionContext) -> None:
    state = _state(context)
    if state.outer_usage is None:
        raise _fail(state, "stop-test called without start-test")
    governor = context.governor
    context.measure()
    state.test_usage = governor.usage()
    for name, used in state.outer_usage.items():
        governor.record(name, used)
    state.outer_usage = None
    _refuel(context)
    context.log.event("TEST_STOP", "governor counters restored")


def _refuel(context: ExecutionContext) -> None:
    """Give the test's store exactly the fuel the governor has left."""
    if context.store is not None:
        fuel = context.governor.remaining("fuel")
        context.store.set_fuel(fuel)
        context.fuel_granted = fuel


def fail(context: ExecutionContext, message: str) -> None:
    raise _fail(_state(context), message)


def link(linker: wasmtime.Linker) -> None:
    define_import(linker, TESTING_MOCK_CALLOUT, mock_callout)
    define_import(linker, TESTING_MOCK_CALLS, mock_calls)
    define_import(linker, TESTING_CREATE_RECORDS, create_records)
    define_import(linker, TESTING_START_TEST, start_test)
    define_import(linker, TESTING_STOP_TEST, stop_test)
    define_import(linker, TESTING_FAIL, fail)
