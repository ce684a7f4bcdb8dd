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
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from types import SimpleNamespace
from typing import Any

from ..abi.codec import decode, encode
from ..abi.signatures import ABI_VERSION, HostFunction, Lowering, Param
from ..errors import CatchableError, CircuitError, LimitExceeded
from ..execution.context import ExecutionContext, current_context, running
from ..resources import python_sdk_dir
from ..sandbox.invocation import Invocation, outcome_of
from ..sandbox.runtime import Runtime
from .capability import TEST_HOST_FUNCTIONS


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


def _argument(param: Param, value: Any) -> Any:
    """An SDK argument as the capability takes it: an enum by case name, ``list<u8>`` as bytes."""
    if param.lowering is Lowering.ENUM:
        return param.cases[int(getattr(value, "value", value))]
    if param.lowering is Lowering.BYTES:
        return bytes(value)
    return value


def _native(function: HostFunction) -> Callable[..., Any]:
    """The row as the SDK calls it; errors travel as they would out of a component."""
    has_err = function.returns.is_result

    def call(*args: Any) -> Any:
        context = current_context()
        arguments = [_argument(param, value) for param, value in zip(function.params, args, strict=True)]
        try:
            return function.capability(context, *arguments)
        except CatchableError as exc:
            if has_err:
                raise Err(str(exc)) from None
            raise Uncatchable(context.fail(exc)) from None  # type: ignore[arg-type]
        except CircuitError as exc:  # limits, timeouts, faults, testing.fail: not the circuit's to catch
            raise Uncatchable(context.fail(exc)) from None  # type: ignore[arg-type]

    return call


def make_binding(functions: tuple[HostFunction, ...] = TEST_HOST_FUNCTIONS) -> SimpleNamespace:
    """The interfaces ``circuit_sdk._bindings.install`` expects, one plain function per table row."""
    interfaces: dict[str, dict[str, Callable[..., Any]]] = {}
    for function in functions:
        interfaces.setdefault(function.interface, {})[function.python_name] = _native(function)
    return SimpleNamespace(**{name: SimpleNamespace(**calls) for name, calls in interfaces.items()})


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
    abi_version: str = ABI_VERSION  # the world the circuit is built against: what limits.usage shows it


class NativeRuntime(Runtime):
    """A ``Runtime`` that runs ``NativeCircuit`` bindings in-process (triggers fired by tests)."""

    def invoke(self, module: Any, event: bytes, context: ExecutionContext) -> Invocation:
        if not isinstance(module, NativeCircuit):
            return super().invoke(module, event, context)
        describe = importlib.import_module("circuit_sdk._describe").describe
        dispatch = importlib.import_module("circuit_sdk.trigger").dispatch
        context.abi_version = module.abi_version
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
