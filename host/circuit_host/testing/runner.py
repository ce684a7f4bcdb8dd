"""Run a circuit's tests: each in a fresh store and a fresh records transaction, rolled back after.

The test module (``circuit-test`` world: the circuit, its tests and the SDK's testing module, see
``build.build_tests``) is also registered as the circuit's own trigger for the manifest's
``[[triggers]]``, so a test's DML fires the circuit exactly as production would, sharing the
test's governor, log, mocks and transaction.
"""

from __future__ import annotations

import struct
import time
import uuid
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

import wasmtime
import wasmtime.component as wc

from ..abi.codec import decode
from ..abi.signatures import LIST_AREA_SIZE, RESULT_AREA_SIZE
from ..bundles.manifest import Manifest
from ..circuitdb import CircuitDB
from ..connectors.http_client import HttpConnector
from ..coverage import CoverageReport
from ..errors import GuestFault, Rejected
from ..execution.callout_policy import NamedCredential
from ..execution.context import running
from ..execution.execution_log import ExecutionLog, LogEntry
from ..execution.governor import Governor, Usage
from ..execution.limits import LimitsProfile
from ..sandbox.invocation import Invocation
from ..sandbox.loaded import CircuitComponent, Loaded
from ..sandbox.runtime import Runtime
from ..triggers import TriggerBinding, TriggerRegistry
from ..triggers.firing import TriggerFiring
from .mocks import CalloutMocks
from .state import TestCalloutSession, TestExecutionContext, TestState

MAX_MESSAGE_BYTES = 64 * 1024


@dataclass(frozen=True)
class TestResult:
    """One test's outcome: ``pass``, ``fail`` (an assertion, ``fail``, an unmatched callout) or
    ``error`` (a trap, a limit, a timeout: the test could not finish)."""

    __test__ = False  # not a pytest test class

    name: str
    status: str
    message: str | None
    usage: dict[str, Usage]
    test_usage: dict[str, Usage] | None  # between start-test and stop-test, when the test used them
    duration_ms: float
    logs: list[LogEntry] = field(default_factory=list)

    def to_json(self) -> dict[str, Any]:
        def used(usage: dict[str, Usage] | None) -> dict[str, Any] | None:
            if usage is None:
                return None
            return {name: {"used": u.used, "limit": u.limit} for name, u in usage.items()}

        return {
            "name": self.name,
            "status": self.status,
            "message": self.message,
            "usage": used(self.usage),
            "test_usage": used(self.test_usage),
            "duration_ms": self.duration_ms,
            "logs": [entry.as_dict() for entry in self.logs],
        }


@dataclass(frozen=True)
class TestReport:
    __test__ = False  # not a pytest test class

    results: list[TestResult]
    coverage: CoverageReport | None = None  # the circuit's own source lines, when measured
    native: TestReport | None = None  # Python circuits: the same tests run natively under pytest

    @property
    def passed(self) -> bool:
        return all(r.status == "pass" for r in self.results) and (self.native is None or self.native.passed)

    def counts(self) -> dict[str, int]:
        return {status: sum(r.status == status for r in self.results) for status in ("pass", "fail", "error")}

    def to_json(self) -> dict[str, Any]:
        report: dict[str, Any] = {
            "passed": self.passed,
            "counts": self.counts(),
            "tests": [r.to_json() for r in self.results],
        }
        if self.native is not None:
            report["native"] = self.native.to_json()
        if self.coverage is not None:
            report["coverage"] = {
                "percent": round(self.coverage.percent, 2),
                "lines_found": self.coverage.lines_found,
                "lines_hit": self.coverage.lines_hit,
                "files": {path: round(f.percent, 2) for path, f in self.coverage.files.items()},
                "functions_without_lines": [f.name for f in self.coverage.functions_without_lines],
            }
        return report


@dataclass(frozen=True)
class TestBudget:
    """How many tests one run may have, and how long it may take (the deploy gate runs inside a request)."""

    __test__ = False  # not a pytest test class

    max_tests: int
    max_seconds: float


@contextmanager
def open_test_context(
    records: CircuitDB,
    limits: LimitsProfile,
    credentials: Mapping[str, NamedCredential],
    firing: TriggerFiring | None,
    label: str,
) -> Iterator[TestExecutionContext]:
    """One test's world: fresh governor, log and mocks, a records transaction rolled back after.

    Shared by the sandboxed runner and the native (pytest) run, so both see the same limits.
    """
    mocks = CalloutMocks()
    http = HttpConnector(transport=mocks.transport())
    transaction = records.begin()
    governor = Governor(limits)
    log = ExecutionLog(uuid.uuid4().hex, governor)
    context = TestExecutionContext(
        governor=governor,
        log=log,
        records=firing.wrap(transaction) if firing is not None else transaction,
        http=TestCalloutSession(http, credentials=dict(credentials)),
        testing=TestState(mocks, records.schema),
    )
    log.event("EXECUTION_START", f"test {label}")
    try:
        with running(context):  # the native run's SDK calls, and host DML, are for this test
            yield context
    finally:
        transaction.rollback()  # tests never see each other's data
        transaction.close()
        http.close()
        context.governor.record("timeout_ms", context.governor.elapsed_ms())


def test_credential_url(name: str) -> str:
    """Where ``callout:NAME/...`` goes in a test; mock ``https://NAME.named-credential.test/*``."""
    return f"https://{name}.named-credential.test"


class TestRunner:
    """Runs the tests of one loaded test module against one records store (schema applied)."""

    __test__ = False  # not a pytest test class

    def __init__(
        self,
        runtime: Runtime,
        module: Loaded,
        records: CircuitDB,
        manifest: Manifest | None = None,
        limits: LimitsProfile | None = None,
        tenant: str = "default",
    ) -> None:
        if not runtime.testing:
            raise Rejected("tests need a test runtime: testing.runtime_for_tests()")
        self.runtime = runtime
        self.module = module
        self.records = records
        self.limits = limits or LimitsProfile()
        self.tenant = tenant
        # A test never holds real secrets: each named credential the bundle declares points at
        # a placeholder host that only the test's callout mocks answer.
        names = manifest.credentials.names if manifest is not None else ()
        self.credentials = {name: NamedCredential(url=test_credential_url(name)) for name in names}
        registry = TriggerRegistry()
        if manifest is not None:
            for spec in manifest.triggers:
                for operation in spec.operations:
                    binding = TriggerBinding(manifest.name, spec.object, operation, module, spec.order)
                    registry.register(tenant, binding)
        self.firing = TriggerFiring(runtime, registry, tenant)

    def list_tests(self) -> list[str]:
        outcome, _ = self._execute("list-tests", self._call_list, _component_list)
        if outcome.status != "ok":
            raise Rejected(f"list-tests failed: {outcome.status}: {outcome.error_message}")
        names = outcome.output
        if not isinstance(names, list) or not all(isinstance(n, str) for n in names):
            raise Rejected("list-tests must return a msgpack array of str")
        return names

    def run(self, name: str) -> TestResult:
        started = time.monotonic()
        outcome, context = self._execute(
            name, lambda exports, store, ctx: self._call_run(name, exports, store, ctx), _component_run(name)
        )
        state = context.testing
        assert state is not None
        if state.mocks.unmatched:
            status, message = "fail", state.mocks.unmatched[0]
        elif state.failure is not None:
            status, message = "fail", state.failure
        elif outcome.status == "ok":
            status, message = "pass", None
        elif outcome.status == "error" and outcome.error_kind == "test_failed":
            status, message = "fail", outcome.error_message
        else:
            status, message = "error", f"{outcome.status}: {outcome.error_message}"
            panics = [e.message for e in context.log.entries if e.source == "guest" and e.message.startswith("panic:")]
            if panics:
                message += f" ({panics[-1]})"
        if status != "pass":
            context.log.fatal(f"{status}: {message}")
        return TestResult(
            name=name,
            status=status,
            message=message,
            usage=context.governor.usage(),
            test_usage=state.test_usage,
            duration_ms=round((time.monotonic() - started) * 1000, 3),
            logs=list(context.log.entries),
        )

    def run_all(self, names: list[str] | None = None, budget: TestBudget | None = None) -> TestReport:
        """Run the tests (all by default); a ``budget`` refuses too many tests or too long a run."""
        names = names if names is not None else self.list_tests()
        if budget is None:
            return TestReport([self.run(name) for name in names])
        if len(names) > budget.max_tests:
            raise Rejected(f"{len(names)} tests, over the limit of {budget.max_tests} per run")
        started = time.monotonic()
        results: list[TestResult] = []
        for name in names:
            if time.monotonic() - started > budget.max_seconds:
                raise Rejected(f"the tests ran over {budget.max_seconds:g} s after {len(results)} of {len(names)}")
            results.append(self.run(name))
        return TestReport(results)

    # -- one store, one transaction ------------------------------------------------------------

    def _execute(
        self, label: str, call: Any, component_call: Callable[[wc.Instance, wasmtime.Store], Invocation]
    ) -> tuple[Invocation, TestExecutionContext]:
        with open_test_context(self.records, self.limits, self.credentials, self.firing, label) as context:
            if isinstance(self.module, CircuitComponent):
                outcome = self.runtime.run_component(self.module, context, component_call)
            else:
                outcome = self.runtime.run_in_store(
                    self.module, context, lambda exports, store: call(exports, store, context)
                )
        context.log.event("EXECUTION_END", f"status {outcome.status}, rolled back")
        return outcome, context

    @staticmethod
    def _call_list(exports: Any, store: wasmtime.Store, context: TestExecutionContext) -> Invocation:
        guest = context.guest
        assert guest is not None
        retptr = _func(exports, "list-tests")(store)
        area = guest.check_area(retptr, LIST_AREA_SIZE, "list-tests result")
        ptr, length = struct.unpack("<II", guest.read(area, LIST_AREA_SIZE, "list-tests result"))
        names = decode(guest.read(ptr, length, "list-tests payload"), "list-tests payload")
        guest.call_back(_func(exports, "cabi_post_list-tests"), retptr)
        return Invocation("ok", output=names)

    @staticmethod
    def _call_run(name: str, exports: Any, store: wasmtime.Store, context: TestExecutionContext) -> Invocation:
        guest = context.guest
        assert guest is not None
        ptr, length = guest.allocate(name.encode("utf-8"), "test name")
        retptr = _func(exports, "run-test")(store, ptr, length)
        area = guest.check_area(retptr, RESULT_AREA_SIZE, "run-test result")
        tag, msg_ptr, msg_len = struct.unpack("<BxxxII", guest.read(area, RESULT_AREA_SIZE, "run-test result"))
        if tag not in (0, 1):
            raise GuestFault(f"run-test result: invalid discriminant {tag}")
        message = guest.read_str(msg_ptr, min(msg_len, MAX_MESSAGE_BYTES), "run-test message") if tag else ""
        guest.call_back(_func(exports, "cabi_post_run-test"), retptr)
        if tag == 0:
            return Invocation("ok")
        return Invocation("error", error_kind="test_failed", error_message=message)


def _component_export(instance: wc.Instance, store: wasmtime.Store, name: str) -> wc.Func:
    func = instance.get_func(store, name)
    if func is None:
        raise GuestFault(f"test component exports no {name!r}")
    return func


def _component_list(instance: wc.Instance, store: wasmtime.Store) -> Invocation:
    payload = _component_export(instance, store, "list-tests")(store)
    if not isinstance(payload, bytes):
        raise GuestFault("list-tests returned an unexpected value")
    return Invocation("ok", output=decode(payload, "list-tests payload"))


def _component_run(name: str) -> Callable[[wc.Instance, wasmtime.Store], Invocation]:
    def call(instance: wc.Instance, store: wasmtime.Store) -> Invocation:
        failure = _component_export(instance, store, "run-test")(store, name)
        if failure is None:
            return Invocation("ok")
        if not isinstance(failure, str):
            raise GuestFault("run-test returned an unexpected value")
        return Invocation("error", error_kind="test_failed", error_message=failure[:MAX_MESSAGE_BYTES])

    return call


def _func(exports: Any, name: str) -> wasmtime.Func:
    item = exports[name]
    if not isinstance(item, wasmtime.Func):
        raise GuestFault(f"export {name!r} is not a function")
    return item
