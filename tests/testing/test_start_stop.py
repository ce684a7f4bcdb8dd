"""startTest/stopTest: a fresh set of governor counters in between, the outer ones restored after."""

from __future__ import annotations

import pytest

from circuit_host.testing import TestRunner
from tests.contexts import make_context


def test_start_test_resets_and_stop_test_restores(lab_runner: TestRunner) -> None:
    result = lab_runner.run("start_stop_resets_limits")
    assert result.status == "pass", result.message
    assert result.test_usage is not None
    assert result.test_usage["queries"].used == 60  # inside the block
    assert result.usage["queries"].used == 60  # outside it: the block does not count
    assert result.test_usage["fuel"].used > 0


def test_without_start_test_the_limit_stops_the_test(lab_runner: TestRunner) -> None:
    result = lab_runner.run("without_start_limits_bite")
    assert result.status == "error"
    assert result.test_usage is None


def test_testing_functions_refuse_a_context_that_is_not_a_test() -> None:
    from circuit_host.errors import GuestFault
    from circuit_host.testing import capability as testing

    with make_context() as context, pytest.raises(GuestFault, match="only to the test itself"):
        testing.start_test(context)
