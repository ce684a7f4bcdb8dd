"""Virtual LPR in Python: score new Contacts, grade them, and task the grade-A leads.

The same rules as the Zig example (examples/virtual_lpr) and benchmarks/native_vlpr.py:
fit (title, email domain, company size) + intent (visits, opens, a call) + timing (lead
source, the median household income of the contact's ZIP from an optional census callout).
"""

from __future__ import annotations

from typing import Any

from circuit_sdk import CalloutError, TriggerContext, http, records, trigger
from circuit_sdk.msgpack import MsgpackError, packb, unpackb

FREE_MAIL = {"gmail.com", "yahoo.com", "hotmail.com", "outlook.com", "aol.com", "icloud.com"}
NEXT_ACTION = {"A": "Call within 1 hour", "B": "Call today", "C": "Add to nurture sequence", "D": "Monitor"}
TITLE_POINTS = (
    (("chief", "ceo", "founder", "owner", "president"), 20),
    (("vp", "vice president", "director", "head"), 15),
    (("manager",), 10),
)
SOURCE_POINTS = {"Referral": 10, "Web": 7, "Website": 7, "Event": 5, "Trade Show": 5}


def _count(value: Any) -> int:
    if isinstance(value, bool) or not isinstance(value, int | float):
        return 0
    return max(0, int(value))


def title_points(title: Any) -> int:
    if not isinstance(title, str) or not title:
        return 0
    lowered = title.lower()
    for words, points in TITLE_POINTS:
        if any(word in lowered for word in words):
            return points
    return 5


def email_points(email: Any) -> int:
    if not isinstance(email, str) or "@" not in email:
        return 0
    return 3 if email.rsplit("@", 1)[1].lower() in FREE_MAIL else 10


def size_points(size: Any) -> int:
    n = _count(size)
    return 10 if n >= 200 else 7 if n >= 50 else 4 if n >= 10 else 0


def source_points(source: Any) -> int:
    if not isinstance(source, str) or not source:
        return 0
    return SOURCE_POINTS.get(source, 2)


def income_points(income: Any) -> int:
    if income is None:
        return 0
    n = _count(income)
    return 10 if n >= 100_000 else 6 if n >= 60_000 else 2


def score(contact: dict[str, Any], incomes: dict[str, Any]) -> int:
    fit = (
        title_points(contact.get("Title"))
        + email_points(contact.get("Email"))
        + size_points(contact.get("Company_Size__c"))
    )
    intent = (
        2 * min(_count(contact.get("Website_Visits__c")), 10)
        + 2 * min(_count(contact.get("Emails_Opened__c")), 5)
        + (10 if contact.get("Called_Business__c") is True else 0)
    )
    zip_code = contact.get("MailingPostalCode")
    census = incomes.get(zip_code) if isinstance(zip_code, str) else None
    income = census.get("median_household_income") if isinstance(census, dict) else None
    return fit + intent + source_points(contact.get("LeadSource")) + income_points(income)


def grade(total: int) -> str:
    return "A" if total >= 70 else "B" if total >= 50 else "C" if total >= 30 else "D"


def enrich(contacts: list[dict[str, Any]]) -> dict[str, Any]:
    """Median incomes by ZIP from the census endpoint named by the ``census_url`` setting, if any."""
    setting = records.query("SELECT Value__c FROM Circuit_Setting__c WHERE Name = 'census_url' LIMIT 1")
    if not setting:
        return {}
    zips = list(dict.fromkeys(c["MailingPostalCode"] for c in contacts if c.get("MailingPostalCode")))
    try:
        response = http.post(
            setting[0]["Value__c"], packb({"zips": zips}), headers={"content-type": "application/msgpack"}
        )
    except CalloutError:
        return {}
    if response.status != 200:
        return {}
    try:
        decoded = unpackb(response.body)
    except MsgpackError:
        return {}
    return decoded if isinstance(decoded, dict) else {}


@trigger("Contact", "after_insert")
def score_new_leads(ctx: TriggerContext) -> dict[str, int]:
    """One query, at most one callout, one update, at most one insert: bulk-safe."""
    incomes = enrich(ctx.new)
    updates, tasks = [], []
    for contact in ctx.new:
        total = score(contact, incomes)
        letter = grade(total)
        updates.append(
            {
                "Id": contact["Id"],
                "VLPR_Score__c": total,
                "VLPR_Grade__c": letter,
                "Next_Action__c": NEXT_ACTION[letter],
            }
        )
        if total >= 70:
            name = " ".join(n for n in (contact.get("FirstName"), contact.get("LastName")) if n)
            subject = f"CRITICAL: call {name} (VLPR {total})" if name else f"CRITICAL: call (VLPR {total})"
            tasks.append(
                {
                    "Subject": subject,
                    "Priority": "High",
                    "Status": "Not Started",
                    "WhoId": contact["Id"],
                    "Description": f"Virtual LPR grade A, score {total}",
                }
            )
    records.update("Contact", updates)
    if tasks:
        records.insert("Task", tasks)
    return {"scored": len(ctx.new), "grade_a": len(tasks)}
