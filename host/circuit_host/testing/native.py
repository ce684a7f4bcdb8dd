"""Python circuits outside the sandbox: the SDK bound in-process to the same capabilities.

``circuit test`` runs a Python circuit's tests twice. This is the native half: under pytest,
``circuit_sdk`` calls ``NativeBinding`` instead of component imports, and every call goes to
the very capability functions (``capabilities/``) the sandbox uses, against the same governor,
connectors, mocks and test records, so queries, DML, callouts and log limits behave
identically. What only a sandbox has is absent: fuel, the memory cap and the epoch deadline.

As in the sandbox, a governor violation cannot be caught by the circuit: it travels as a
``BaseException`` (``Uncatchable``), which ``except Exception`` does not stop.
"""

from __future__ import annotations

import importlib
import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from types import SimpleNamespace
from typing import Any

from ..abi.codec import decode, encode
from ..capabilities import http as http_cap
from ..capabilities import limits as limits_cap
from ..capabilities import log as log_cap
from ..capabilities import records as records_cap
from ..capabilities import testing as testing_cap
from ..errors import CatchableError, CircuitError, LimitExceeded
from ..execution.context import ExecutionContext
from ..resources import python_sdk_dir
from ..sandbox.invocation import Invocation, outcome_of
from ..sandbox.runtime import Runtime


class Err(Exception):  # the name the SDK's ``unwrap`` recognises (componentize-py's)
    """An ``err`` result of a host call, as componentize-py raises it inside a component."""

    def __init__(self, value: str) -> None:
        super().__init__(value)
        self.value = value


class Uncatchable(BaseException):
    """A governor violation, a test failure or a host fault: ends the run, like a trap."""

    def __init__(self, error: CircuitError) -> None:
        super().__init__(str(error))
        self.error = error


_stack: list[ExecutionContext] = []


def current() -> ExecutionContext:
    if not _stack:
        raise RuntimeError("a circuit_sdk call outside a circuit test (use the circuit pytest plugin)")
    return _stack[-1]


@contextmanager
def running(context: ExecutionContext) -> Iterator[None]:
    """Make ``context`` the one SDK calls use until the block ends."""
    _stack.append(context)
    try:
        yield
    finally:
        _stack.pop()


def _call(function: Callable[..., Any], *args: Any, result: bool = True) -> Any:
    try:
        return function(current(), *args)
    except CatchableError as exc:
        if result:
            raise Err(str(exc)) from None
        raise Uncatchable(exc) from None
    except CircuitError as exc:  # limits, timeouts, faults, testing.fail: not the circuit's to catch
        raise Uncatchable(exc) from None


def _value(enum_or_int: Any) -> int:
    return int(getattr(enum_or_int, "value", enum_or_int))


def make_binding() -> SimpleNamespace:
    """The five interfaces ``circuit_sdk._bindings.install`` expects, as plain functions."""
    return SimpleNamespace(
        records=SimpleNamespace(
            query=lambda soql, binds: _call(records_cap.query, soql, bytes(binds)),
            dml=lambda op, name, rows: _call(records_cap.dml, _value(op), name, bytes(rows)),
        ),
        http=SimpleNamespace(callout=lambda request: _call(http_cap.callout, bytes(request))),
        log=SimpleNamespace(write=lambda level, message: _call(log_cap.write, _value(level), message, result=False)),
        limits=SimpleNamespace(usage=lambda: _call(limits_cap.usage, result=False)),
        testing=SimpleNamespace(
            mock_callout=lambda spec: _call(testing_cap.mock_callout, bytes(spec)),
            mock_calls=lambda mock_id: _call(testing_cap.mock_calls, bytes(mock_id)),
            create_records=lambda name, template: _call(testing_cap.create_records, name, bytes(template)),
            start_test=lambda: _call(testing_cap.start_test, result=False),
            stop_test=lambda: _call(testing_cap.stop_test, result=False),
            fail=lambda message: _call(testing_cap.fail, message, result=False),
        ),
    )


def import_sdk(circuit_dir: Path) -> Any:
    """Put the circuit and the SDK on ``sys.path``, bind the SDK natively, return ``circuit_sdk``."""
    for path in (str(python_sdk_dir()), str(circuit_dir)):
        if path not in sys.path:
            sys.path.insert(0, path)
    importlib.import_module("circuit_sdk._bindings").install(make_binding())
    return importlib.import_module("circuit_sdk")


@dataclass(frozen=True)
class NativeCircuit:
    """The circuit's own handlers, in this process: what a trigger binding runs natively."""

    sha256: str = "native"


class NativeRuntime(Runtime):
    """A ``Runtime`` that runs ``NativeCircuit`` bindings in-process (triggers fired by tests)."""

    def invoke(self, module: Any, event: bytes, context: ExecutionContext) -> Invocation:
        if not isinstance(module, NativeCircuit):
            return super().invoke(module, event, context)
        describe = importlib.import_module("circuit_sdk._describe").describe
        dispatch = importlib.import_module("circuit_sdk.trigger").dispatch
        try:
            context.governor.charge("input_bytes", len(event))
            with running(context):
                output = dispatch(decode(event, "event"))
            context.governor.charge("output_bytes", len(encode(output)))
            return Invocation("ok", output=output)
        except Uncatchable as exc:
            return outcome_of(exc.error)
        except LimitExceeded as exc:
            return outcome_of(exc)
        except Exception as exc:
            return Invocation("error", error_kind="guest_error", error_message=describe(exc))
