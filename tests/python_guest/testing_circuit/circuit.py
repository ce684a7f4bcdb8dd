"""Tiers contacts before insert; logs after insert. Small on purpose: coverage is easy to reason about."""

from __future__ import annotations

from circuit_sdk import TriggerContext, log, records, trigger


def tier(visits: object) -> str:
    if not isinstance(visits, int) or visits <= 0:
        return "cold"
    if visits < 10:
        return "warm"
    return "hot"


@trigger("Contact", "before_insert")
def set_tier(ctx: TriggerContext) -> None:
    for contact in ctx.new:
        contact["Tier__c"] = tier(contact.get("Website_Visits__c"))


@trigger("Contact", "after_insert")
def announce(ctx: TriggerContext) -> int:
    log.info(f"{len(ctx.new)} contacts inserted")
    return len(records.query("SELECT Id FROM Contact"))


def never_called() -> str:
    return "this line is never covered"
