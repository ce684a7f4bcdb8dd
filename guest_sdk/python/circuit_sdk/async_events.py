"""``@job``, ``@schedule`` and ``@batch_start/execute/finish``: the handlers of asynchronous executions.

A queueable job's execution gets ``{"kind": "job", "payload": ..., "depth": n}`` and a schedule tick's
``{"kind": "schedule", "schedule": name, "tick": ISO UTC, "payload": ...}``. A batch circuit's get
``{"kind": "batch-start", "batch_id", "payload"}`` (the handler returns the SOQL query), then
``{"kind": "batch-execute", "batch_id", "chunk": n, "records": [...], "payload"}`` per chunk, then
``{"kind": "batch-finish", "batch_id", "payload", "summary": {...}}``. ``@trigger`` handlers keep
receiving trigger events. An async event with no handler for its kind is an ``err``, so a job aimed
at the wrong circuit fails visibly instead of succeeding with nothing done.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

KINDS = ("job", "schedule", "batch-start", "batch-execute", "batch-finish")
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
    batch_id: str | None = None  # a batch's events: which batch
    chunk: int | None = None  # batch-execute: the chunk's number, from 0
    records: list[dict[str, Any]] = field(default_factory=list)  # batch-execute: its records, in Id order
    summary: dict[str, int] | None = None  # batch-finish: records_processed, records_failed, chunks_ok, chunks_failed


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
batch_start = _register("batch-start")
batch_start.__doc__ = (
    "Register the decorated function for a batch's start: it returns the SOQL query of the records to "
    "process (a string, or ``{'query': ...}``); without it a batch must be started with a query."
)
batch_execute = _register("batch-execute")
batch_execute.__doc__ = (
    "Register the decorated function for each chunk of a batch (``ctx.records``, ``ctx.chunk``): its own "
    "execution and transaction; raising fails that chunk only."
)
batch_finish = _register("batch-finish")
batch_finish.__doc__ = "Register the decorated function for a batch's end (``ctx.summary``)."


def is_async(event: Any) -> bool:
    return isinstance(event, dict) and event.get("kind") in KINDS


def dispatch_async(event: dict[str, Any]) -> Any:
    """Run the handler of the event's kind and return its value (nil when it returns None)."""
    kind = event["kind"]
    handler = _handlers.get(kind)
    if handler is None:
        raise LookupError(f"this circuit has no @{kind.replace('-', '_')} handler for '{kind}' events")
    ctx = AsyncContext(
        kind=kind,
        payload=event.get("payload"),
        depth=int(event.get("depth") or 0),
        schedule=event.get("schedule"),
        tick=event.get("tick"),
        event=event,
        batch_id=event.get("batch_id"),
        chunk=event.get("chunk"),
        records=list(event.get("records") or []),
        summary=event.get("summary"),
    )
    output = handler(ctx)
    if kind == "batch-start" and isinstance(output, str):
        return {"query": output}
    return output
