"""``@job`` and ``@schedule``: the handlers of asynchronous executions (ABI 1.1.0 events).

A queueable job's execution gets ``{"kind": "job", "payload": ..., "depth": n}`` and a schedule tick's
``{"kind": "schedule", "schedule": name, "tick": ISO UTC, "payload": ...}``; ``@trigger`` handlers
keep receiving trigger events. An async event with no handler for its kind is an ``err``, so a job
aimed at the wrong circuit fails visibly instead of succeeding with nothing done.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

KINDS = ("job", "schedule")
_handlers: dict[str, Callable[[AsyncContext], Any]] = {}


@dataclass
class AsyncContext:
    """One asynchronous event: ``payload`` is what ``jobs.enqueue`` (or the schedule) passed."""

    kind: str
    payload: Any = None
    depth: int = 0  # a job's place in its chain: 1 for a job a trigger enqueued
    schedule: str | None = None  # the schedule's name, for a tick
    tick: str | None = None  # the tick's time (ISO 8601, UTC), for a tick
    event: dict[str, Any] = field(default_factory=dict)


def _register(kind: str) -> Callable[[Callable[[AsyncContext], Any]], Callable[[AsyncContext], Any]]:
    def register(fn: Callable[[AsyncContext], Any]) -> Callable[[AsyncContext], Any]:
        if kind in _handlers:
            raise ValueError(f"a circuit has one @{kind} handler; {_handlers[kind].__name__} is already one")
        _handlers[kind] = fn
        return fn

    return register


job = _register("job")
job.__doc__ = "Register the decorated function for this circuit's queueable jobs (``{'kind': 'job'}``)."
schedule = _register("schedule")
schedule.__doc__ = "Register the decorated function for this circuit's schedule ticks (``[[schedules]]``)."


def is_async(event: Any) -> bool:
    return isinstance(event, dict) and event.get("kind") in KINDS


def dispatch_async(event: dict[str, Any]) -> Any:
    """Run the handler of the event's kind and return its value (nil when it returns None)."""
    kind = event["kind"]
    handler = _handlers.get(kind)
    if handler is None:
        raise LookupError(f"this circuit has no @{kind} handler for '{kind}' events")
    ctx = AsyncContext(
        kind=kind,
        payload=event.get("payload"),
        depth=int(event.get("depth") or 0),
        schedule=event.get("schedule"),
        tick=event.get("tick"),
        event=event,
    )
    return handler(ctx)
