"""An execution's timeline: when each host call and trigger run started, how long it took, and what
it was nested in; stored with the execution so a waterfall can be drawn later.

``ExecutionTimeline`` is an ``ExecutionObserver`` wrapped around another (metrics, traces): it sees
every step the debug log opens, even the ones a full log no longer keeps, and keeps the first
``max_steps`` of them (the rest are counted in ``dropped``).
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

from .execution_observer import UNOBSERVED, ExecutionObserver, ObservedExecution, ObservedStep

MAX_TIMELINE_STEPS = 500
MAX_STEP_NAME_CHARS = 300  # a bar's label: the SOQL text, ``INSERT Contact``, ``GET https://…``


@dataclass(frozen=True)
class TimelineStep:
    """One bar of the waterfall. ``start_ms`` counts from the execution's start; ``depth`` is how
    many steps enclose it (a trigger inside the DML that fired it is one deeper)."""

    kind: str  # query, dml, callout, trigger
    name: str
    start_ms: float
    duration_ms: float
    depth: int
    outcome: str
    rows: int | None = None

    def as_dict(self) -> dict[str, Any]:
        return {
            "kind": self.kind,
            "name": self.name,
            "start_ms": self.start_ms,
            "duration_ms": self.duration_ms,
            "depth": self.depth,
            "outcome": self.outcome,
            "rows": self.rows,
        }


class ExecutionTimeline:
    """Records one execution's steps, passing every observation on to ``inner``.

    One instance per execution: an executor runs its execution's steps on one thread, in nesting
    order, so a counter of open steps is their depth.
    """

    def __init__(self, inner: ExecutionObserver = UNOBSERVED, max_steps: int = MAX_TIMELINE_STEPS) -> None:
        self.inner = inner
        self.max_steps = max_steps
        self.dropped = 0
        self._kept: list[tuple[int, TimelineStep]] = []  # with its start order: a step is kept when it ends
        self._started = time.monotonic()
        self._open = 0
        self._begun = 0

    @contextmanager
    def execution(self, execution_id: str, label: str) -> Iterator[ObservedExecution]:
        self._started = time.monotonic()
        with self.inner.execution(execution_id, label) as observed:
            yield observed

    @contextmanager
    def step(self, step: ObservedStep) -> Iterator[ObservedStep]:
        depth = self._open
        index = self._begun
        self._begun += 1
        started = time.monotonic()
        self._open += 1
        try:
            with self.inner.step(step) as observed:
                yield observed
        except BaseException:
            step.outcome = "error" if step.outcome == "ok" else step.outcome
            raise
        finally:
            self._open -= 1
            self._keep(step, index, depth, started)

    def _keep(self, step: ObservedStep, index: int, depth: int, started: float) -> None:
        if index >= self.max_steps:
            self.dropped += 1
            return
        rows = step.attributes.get("circuit.rows", step.attributes.get("circuit.records"))
        self._kept.append(
            (
                index,
                TimelineStep(
                    kind=step.kind,
                    name=step.name[:MAX_STEP_NAME_CHARS],
                    start_ms=round((started - self._started) * 1000, 3),
                    duration_ms=round((time.monotonic() - started) * 1000, 3),
                    depth=depth,
                    outcome=step.outcome,
                    rows=rows if isinstance(rows, int) and not isinstance(rows, bool) else None,
                ),
            )
        )

    @property
    def steps(self) -> list[TimelineStep]:
        """The kept steps in the order they started."""
        return [step for _, step in sorted(self._kept, key=lambda kept: kept[0])]

    def as_list(self) -> list[dict[str, Any]]:
        """The kept steps as stored with the execution."""
        return [step.as_dict() for step in self.steps]
