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


@trigger("Strings", "after_insert")
def strings(ctx: TriggerContext) -> Any:
    """string both ways: each row's Text goes to the host as a log line, its Query (if any) as
    SOQL whose error message comes back; Raise makes handle return err with the first Text."""
    replies = []
    for row in ctx.new:
        log.info(row["Text"])
        if "Query" in row:
            try:
                records.query(row["Query"])
                replies.append(None)
            except QueryError as exc:
                replies.append(str(exc))
    if ctx.new and ctx.new[0].get("Raise"):
        raise ValueError(ctx.new[0]["Text"])
    return replies
