"""The circuit test framework: run a circuit's tests in the sandbox (``circuit test``).

``TestRunner`` runs each test of a test module (world ``circuit-test``) in a fresh store and a
fresh, rolled-back records transaction; ``CalloutMocks`` answers its callouts; the ``testing``
capability (``capability.py``, whose rows only test runtimes link: ``runtime_for_tests()``) is what
the guest calls.
"""

from __future__ import annotations

from .mocks import CalloutMocks, UnmatchedCallout
from .runner import TestReport, TestResult, TestRunner
from .session import outside_sdk, run_circuit_tests, run_native_tests, run_test_module

__all__ = [
    "CalloutMocks",
    "TestReport",
    "TestResult",
    "TestRunner",
    "UnmatchedCallout",
    "outside_sdk",
    "run_circuit_tests",
    "run_native_tests",
    "run_test_module",
]
