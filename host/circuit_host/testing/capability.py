"""``testing``: mocks, test records, start/stop-test and fail, for test modules only.

Its rows (``TESTING_FUNCTIONS``) are linked only into test runtimes (``runtime_for_tests()``: ``circuit
test``, the deploy gate), never into the production linker, so a production load rejects a module
that imports it. The runtime never imports this module; the test framework hands it the rows.
The functions find their per-test state on the ``TestExecutionContext``; called from any other context (a trigger
the test fired), they trap.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from ..abi.codec import decode, encode
from ..abi.host_functions import ABI_FUNCTIONS
from ..abi.signatures import BYTES, STRING, HostFunction, Returns
from ..capabilities import records
from ..errors import GuestFault
from ..execution.context import ExecutionContext
from ..sandbox.runtime import Runtime
from .factories import create_records as build_and_insert
from .state import RESET_ON_START, TestExecutionContext, TestState


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
        reply = decode(records.dml(context, "insert", name, encode(rows)), "dml reply")
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


TESTING_FUNCTIONS: tuple[HostFunction, ...] = (
    HostFunction("testing", "mock-callout", (BYTES,), Returns.RESULT_BYTES_OR_STRING, mock_callout, test_only=True),
    HostFunction("testing", "mock-calls", (BYTES,), Returns.RESULT_BYTES_OR_STRING, mock_calls, test_only=True),
    HostFunction(
        "testing", "create-records", (STRING, BYTES), Returns.RESULT_BYTES_OR_STRING, create_records, test_only=True
    ),
    HostFunction("testing", "start-test", (), Returns.NOTHING, start_test, test_only=True),
    HostFunction("testing", "stop-test", (), Returns.NOTHING, stop_test, test_only=True),
    HostFunction("testing", "fail", (STRING,), Returns.NOTHING, fail, test_only=True),
)
TEST_HOST_FUNCTIONS = (*ABI_FUNCTIONS, *TESTING_FUNCTIONS)  # the ``circuit-test`` world


def runtime_for_tests(cache_dir: Path | None = None) -> Runtime:
    """A runtime for test modules: the ABI plus the ``testing`` interface (world ``circuit-test``)."""
    return Runtime(cache_dir=cache_dir, host_functions=TEST_HOST_FUNCTIONS)
