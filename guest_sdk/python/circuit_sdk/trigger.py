"""``@trigger(object, operation)`` and the dispatch of one event to the decorated handlers."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

Record = dict[str, Any]
OPERATIONS = frozenset(
    {
        "before_insert",
        "before_update",
        "before_delete",
        "after_insert",
        "after_update",
        "after_delete",
        "after_undelete",
    }
)
_handlers: list[tuple[str, str, Callable[[TriggerContext], Any]]] = []


@dataclass
class TriggerContext:
    """One trigger event. In ``before_insert``/``before_update`` handlers, change ``new`` in place."""

    object: str
    operation: str
    new: list[Record] = field(default_factory=list)
    old: list[Record] = field(default_factory=list)
    event: dict[str, Any] = field(default_factory=dict)

    @property
    def is_before(self) -> bool:
        return self.operation.startswith("before_")


def trigger(
    object_name: str, *operations: str
) -> Callable[[Callable[[TriggerContext], Any]], Callable[[TriggerContext], Any]]:
    """Register the decorated function for ``object_name`` and one or more operations."""
    unknown = set(operations) - OPERATIONS
    if not operations or unknown:
        raise ValueError(f"unknown trigger operation(s): {sorted(unknown) or 'none given'}")

    def register(fn: Callable[[TriggerContext], Any]) -> Callable[[TriggerContext], Any]:
        for operation in operations:
            _handlers.append((object_name, operation, fn))
        return fn

    return register


def dispatch(event: dict[str, Any]) -> Any:
    """Run the handlers registered for the event, in registration order.

    Output: for before_insert/before_update, ``{"new": [...]}`` when a handler changed a
    record, else nil. Otherwise the single matching handler's return value, or a list of
    them when several matched.
    """
    ctx = TriggerContext(
        object=event.get("object", ""),
        operation=event.get("operation", ""),
        new=list(event.get("new") or []),
        old=list(event.get("old") or []),
        event=event,
    )
    matching = [fn for obj, op, fn in _handlers if obj == ctx.object and op == ctx.operation]
    if ctx.operation in ("before_insert", "before_update"):
        before = [dict(r) for r in ctx.new]
        for fn in matching:
            fn(ctx)
        return {"new": ctx.new} if ctx.new != before else None
    results = [fn(ctx) for fn in matching]
    if not results:
        return None
    return results[0] if len(results) == 1 else results


def registered() -> list[tuple[str, str, str]]:
    """``(object, operation, function name)`` for every registration, for tooling."""
    return [(obj, op, getattr(fn, "__name__", repr(fn))) for obj, op, fn in _handlers]
