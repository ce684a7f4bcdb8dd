"""Per-test state: the mocks, the schema for factories, start/stop-test snapshots, a failure."""

from __future__ import annotations

from dataclasses import dataclass, field

import httpx

from ..circuitdb.schema import Schema
from ..execution.callout_policy import CalloutSession
from ..execution.context import ExecutionContext
from ..execution.governor import Usage
from .mocks import CalloutMocks

# What Test.startTest gives a fresh set of; wall time, memory and the test's own I/O keep counting.
RESET_ON_START = (
    "fuel",
    "queries",
    "query_rows",
    "query_bytes",
    "dml_statements",
    "dml_rows",
    "callouts",
    "callout_time_ms",
    "log_bytes",
)


@dataclass
class TestState:
    __test__ = False  # not a pytest test class

    mocks: CalloutMocks
    schema: Schema
    outer_usage: dict[str, int] | None = None  # the counters start-test set aside
    test_usage: dict[str, Usage] | None = None  # the counters between start-test and stop-test
    failure: str | None = None  # set by testing.fail (or a misuse of start/stop)


@dataclass
class TestExecutionContext(ExecutionContext):
    """The context of a test's own store; triggers it fires get plain child contexts."""

    __test__ = False  # not a pytest test class

    testing: TestState | None = None


@dataclass
class TestCalloutSession(CalloutSession):
    """Callouts of a test: every URL is allowed, because the transport only answers from mocks."""

    __test__ = False  # not a pytest test class

    allowed_in_test: bool = field(default=True)

    def allows(self, url: httpx.URL) -> bool:
        return self.allowed_in_test
