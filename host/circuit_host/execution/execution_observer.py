"""The port through which an execution is observed (metrics, traces) without knowing by what.

The executor opens one ``execution`` observation around the whole run; the debug log opens a
``step`` around every host call and every trigger it records (so the one place a fact is logged is
the one place it is observed). ``observability/`` implements the port; the default does nothing.
Attribute values are bounded, non-secret facts (SOQL text, object names, row counts, methods and
hosts), never headers or bodies.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from contextlib import AbstractContextManager, contextmanager
from dataclasses import dataclass, field
from typing import Protocol

from .governor import Usage

AttributeValue = str | int | float | bool


@dataclass
class ObservedStep:
    """A host call (``query``, ``dml``, ``callout``) or a trigger run (``trigger``) being observed.

    The caller may add ``attributes`` it learns while the step runs (rows) and sets ``outcome``
    when the step ends other than ``ok``; a step that raises is ``error``.
    """

    kind: str
    name: str
    attributes: dict[str, AttributeValue] = field(default_factory=dict)
    outcome: str = "ok"


@dataclass
class ObservedExecution:
    """What the observer tells the executor (the trace id) and what the executor reports back."""

    trace_id: str | None = None
    status: str = ""
    duration_ms: float = 0.0
    usage: Mapping[str, Usage] = field(default_factory=dict)


class ExecutionObserver(Protocol):
    def execution(self, execution_id: str, label: str) -> AbstractContextManager[ObservedExecution]:
        """Around one whole execution; ``status``, ``duration_ms`` and ``usage`` are set before it exits."""
        ...

    def step(self, step: ObservedStep) -> AbstractContextManager[ObservedStep]:
        """Around one host call or trigger run inside the execution."""
        ...


class Unobserved:
    """The observer of an executor nobody watches (``circuit run``, tests): it does nothing."""

    @contextmanager
    def execution(self, execution_id: str, label: str) -> Iterator[ObservedExecution]:
        yield ObservedExecution()

    @contextmanager
    def step(self, step: ObservedStep) -> Iterator[ObservedStep]:
        yield step


UNOBSERVED: ExecutionObserver = Unobserved()
