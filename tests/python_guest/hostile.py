"""Test circuit: the Virtual LPR example (module ``vlpr``) plus hostile handlers on Account.

Copied to ``circuit.py`` in the test build; the account's Name picks the behaviour.
"""

from __future__ import annotations

from typing import Any

import vlpr  # noqa: F401  # registers the example's Contact trigger
from circuit_sdk import QueryError, TriggerContext, limits, log, records, trigger


@trigger("Account", "after_insert")
def hostile(ctx: TriggerContext) -> Any:
    mode = ctx.new[0]["Name"]
    if mode == "loop":
        while True:
            pass
    if mode == "dml_then_raise":
        records.insert("Task", [{"Subject": "written before the exception"}])
        raise ValueError("boom after DML")
    if mode == "catch_query_error":
        try:
            records.query("SELEC Id FROM Contact")
        except QueryError as exc:
            log.warn(f"caught: {exc}")
            return {"caught": str(exc)[:40]}
        return {"caught": None}
    if mode == "flood":
        try:
            while True:
                records.query("SELECT Id FROM Contact LIMIT 1")
        except Exception:  # governor limits are not catchable: this never runs
            return {"caught_limit": True}
    if mode == "membomb":
        hoard = []
        while True:
            hoard.append(bytearray(1 << 20))
    if mode == "usage":
        return {"queries": list(limits.usage()["queries"])}
    return None


@trigger("Echo", "after_insert")
def echo(ctx: TriggerContext) -> Any:
    """Returns the records it got: exercises list<u8> marshalling both ways."""
    return ctx.new
