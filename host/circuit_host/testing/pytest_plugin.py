"""The pytest plugin of a Python circuit's native test run (``-p circuit_host.testing.pytest_plugin``).

Before the tests are collected it binds ``circuit_sdk`` in-process (``native.py``) and opens a
scratch SQLite store with the manifest's schema; the manifest's ``[[triggers]]`` bind the
circuit's own handlers, so a test's DML fires them as in production. Every test then runs in
the same world as a sandboxed test: a fresh governor under the manifest's limits, fresh
callout mocks (an unmatched callout fails the test, never the network), and a records
transaction rolled back afterwards.
"""

from __future__ import annotations

import importlib
import shutil
import tempfile
from collections.abc import Generator, Iterator, Mapping
from pathlib import Path
from typing import Any, cast

import pytest

from ..bundles.manifest import Manifest, read_manifest
from ..circuitdb import CircuitDB, open_store
from ..execution.callout_policy import NamedCredential
from ..execution.context import running
from ..execution.governor import Usage
from ..execution.limits import LimitsProfile
from ..sandbox.loaded import Loaded
from ..toolchain.python_world import abi_version_for
from ..triggers import TriggerBinding, TriggerRegistry
from ..triggers.firing import TriggerFiring
from .capability import TestFailed
from .mocks import UnmatchedCallout
from .native import NativeCircuit, NativeRuntime, Uncatchable, import_sdk
from .runner import open_test_context, test_credential_url
from .state import TestExecutionContext

TENANT = "default"
STATUS_PROPERTY = "circuit_status"  # what the native run reports for a failed test: fail or error
MESSAGE_PROPERTY = "circuit_message"  # the host's message for a limit, fault or test failure
USAGE_PROPERTY = "circuit_usage"  # the governor's usage at the end of the test
TEST_USAGE_PROPERTY = "circuit_test_usage"  # between start_test and stop_test


def _usage(usage: Mapping[str, Usage]) -> dict[str, dict[str, int]]:
    return {name: {"used": u.used, "limit": u.limit} for name, u in usage.items()}


_SETUP = pytest.StashKey["CircuitSetup"]()


class CircuitSetup:
    """What every test of the session shares: the store, the trigger firing, the limits."""

    def __init__(self, circuit_dir: Path, manifest: Manifest | None) -> None:
        self.scratch = Path(tempfile.mkdtemp(prefix="circuit-native-"))
        self.records: CircuitDB = open_store(self.scratch / "records.db")
        if manifest is not None:
            self.records.apply_schema(manifest.schema_changes())
        self.limits = manifest.limits_profile(LimitsProfile()) if manifest is not None else LimitsProfile()
        names = manifest.credentials.names if manifest is not None else ()
        self.credentials = {name: NamedCredential(url=test_credential_url(name)) for name in names}
        self.runtime = NativeRuntime()
        self.abi_version = abi_version_for(circuit_dir)  # as the build chooses the world
        registry = TriggerRegistry()
        if manifest is not None:
            # NativeRuntime.invoke runs it in-process
            circuit = cast(Loaded, NativeCircuit(abi_version=self.abi_version))
            for spec in manifest.triggers:
                for operation in spec.operations:
                    registry.register(
                        TENANT, TriggerBinding(manifest.name, spec.object, operation, circuit, spec.order)
                    )
        self.firing = TriggerFiring(self.runtime, registry, TENANT)

    def close(self) -> None:
        self.records.close()
        self.runtime.close()
        shutil.rmtree(self.scratch, ignore_errors=True)


def pytest_addoption(parser: pytest.Parser) -> None:
    parser.addoption("--circuit-dir", default=None, help="the Python circuit under test (default: rootdir)")


def pytest_configure(config: pytest.Config) -> None:
    option = config.getoption("--circuit-dir")
    circuit_dir = Path(option).resolve() if option else Path(config.rootpath)
    manifest_path = circuit_dir / "circuit.toml"
    manifest = read_manifest(manifest_path) if manifest_path.is_file() else None
    import_sdk(circuit_dir)
    if (circuit_dir / "circuit.py").is_file() or (circuit_dir / "circuit" / "__init__.py").is_file():
        # As the component does at start-up: registering its triggers must not depend on the tests
        # importing the circuit themselves.
        importlib.import_module("circuit")
    config.stash[_SETUP] = CircuitSetup(circuit_dir, manifest)


def pytest_unconfigure(config: pytest.Config) -> None:
    setup = config.stash.get(_SETUP, None)
    if setup is not None:
        setup.close()


@pytest.fixture(autouse=True)
def circuit_context(request: pytest.FixtureRequest) -> Iterator[TestExecutionContext]:
    """The test's execution context; an unmatched callout or ``testing.fail`` fails the test."""
    setup = request.config.stash[_SETUP]
    with open_test_context(setup.records, setup.limits, setup.credentials, setup.firing, request.node.name) as context:
        context.abi_version = setup.abi_version
        with running(context):
            yield context
        state = context.testing
        assert state is not None
        request.node.user_properties.append((USAGE_PROPERTY, _usage(context.governor.usage())))
        if state.test_usage is not None:
            request.node.user_properties.append((TEST_USAGE_PROPERTY, _usage(state.test_usage)))
        if state.mocks.unmatched:
            pytest.fail(state.mocks.unmatched[0], pytrace=False)
        if state.failure is not None:
            pytest.fail(state.failure, pytrace=False)


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[None]) -> Generator[None, Any, None]:
    """Classify outcomes as the sandbox does: a limit, timeout or fault is an ``error`` (the test
    could not finish); an assertion, ``testing.fail`` or an unmatched callout is a ``fail``."""
    outcome = yield
    report: pytest.TestReport = outcome.get_result()
    if call.excinfo is None or not report.failed:
        return
    error = call.excinfo.value.error if isinstance(call.excinfo.value, Uncatchable) else None
    if error is None:
        report.user_properties.append((STATUS_PROPERTY, "fail"))
        return
    failed = isinstance(error, TestFailed | UnmatchedCallout)
    report.user_properties.append((STATUS_PROPERTY, "fail" if failed else "error"))
    report.user_properties.append((MESSAGE_PROPERTY, str(error)))
