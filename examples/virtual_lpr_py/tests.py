"""Virtual LPR's tests (``circuit test examples/virtual_lpr_py``): the same cases as the Zig example.

Each test runs in a fresh instance and a fresh records transaction, rolled back afterwards.
Inserting Contacts fires this circuit as the Contact after_insert trigger, as in production.
``circuit test`` runs them natively under pytest (coverage.py) and inside the sandbox.
"""

from __future__ import annotations

from typing import Any

from circuit import score
from circuit_sdk import limits, records, testing
from circuit_sdk.msgpack import packb, unpackb

CENSUS_URL = "https://census.example/v1/income"
PRIYA: dict[str, Any] = {
    "FirstName": "Priya",
    "LastName": "Raman",
    "Title": "Chief Revenue Officer",
    "Email": "priya.raman@northwindlogistics.com",
    "Company_Size__c": 450,
    "Website_Visits__c": 14,
    "Emails_Opened__c": 3,
    "Called_Business__c": True,
    "LeadSource": "Referral",
    "MailingPostalCode": "94105",
}


def mock_census(income: int) -> testing.Mock:
    """The census setting the circuit reads, and a mock answering for two ZIPs."""
    testing.create_records("Circuit_Setting__c", fields={"Name": "census_url", "Value__c": CENSUS_URL})
    incomes = {"94105": {"median_household_income": income}, "10001": {"median_household_income": 96_500}}
    return testing.mock_callout(
        "https://census.example/*",
        method="POST",
        headers={"content-type": "application/msgpack"},
        body=packb(incomes),
    )


def contact(record_id: str, fields: str) -> dict[str, Any]:
    return records.query(f"SELECT {fields} FROM Contact WHERE Id = :id", id=record_id)[0]


def test_high_intent_lead_scores_a() -> None:
    [record_id] = testing.create_records("Contact", fields=PRIYA)
    row = contact(record_id, "VLPR_Score__c, VLPR_Grade__c, Next_Action__c")
    assert row["VLPR_Score__c"] == 86, row  # no census configured
    assert row["VLPR_Grade__c"] == "A"
    assert row["Next_Action__c"] == "Call within 1 hour"
    tasks = records.query("SELECT Subject, Priority FROM Task WHERE WhoId = :id", id=record_id)
    assert [(t["Subject"], t["Priority"]) for t in tasks] == [("CRITICAL: call Priya Raman (VLPR 86)", "High")]


def test_bulk_insert_of_200_uses_fewer_than_10_callouts() -> None:
    census = mock_census(149_800)
    with testing.fresh_limits():
        fields = {"LastName": "Bulk {n}", "Email": "lead{n}@acme.io", "Website_Visits__c": 3}
        testing.create_records("Contact", count=200, fields={**fields, "MailingPostalCode": "94105"})
        used = limits.usage()
        assert used["callouts"][0] < 10, used
        assert used["queries"][0] < 10, used
    scored = records.query("SELECT COUNT() FROM Contact WHERE VLPR_Score__c != null")
    assert scored.total_size == 200
    assert census.calls == 1


def test_census_mock_is_called_exactly_once() -> None:
    census = mock_census(149_800)
    testing.create_records("Contact", count=5, fields=PRIYA)
    assert census.calls == 1
    [request] = census.requests
    assert request.method == "POST"
    assert unpackb(request.body) == {"zips": ["94105"]}
    scores = [r["VLPR_Score__c"] for r in records.query("SELECT VLPR_Score__c FROM Contact")]
    assert scores == [96] * 5


def test_census_failure_scores_without_enrichment() -> None:
    testing.create_records("Circuit_Setting__c", fields={"Name": "census_url", "Value__c": CENSUS_URL})
    census = testing.mock_callout("https://census.example/*", status=503, body="unavailable")
    [record_id] = testing.create_records("Contact", fields=PRIYA)
    assert census.calls == 1
    row = contact(record_id, "VLPR_Score__c, VLPR_Grade__c")
    assert (row["VLPR_Score__c"], row["VLPR_Grade__c"]) == (86, "A")


def test_low_intent_lead_is_grade_d_without_task() -> None:
    fields = {"LastName": "Okafor", "Email": "j.okafor@yahoo.com", "Website_Visits__c": 1}
    [record_id] = testing.create_records("Contact", fields=fields)
    row = contact(record_id, "VLPR_Score__c, VLPR_Grade__c, Next_Action__c")
    assert (row["VLPR_Score__c"], row["VLPR_Grade__c"], row["Next_Action__c"]) == (5, "D", "Monitor")
    assert records.query("SELECT COUNT() FROM Task").total_size == 0


def test_messy_numbers_count_as_truncated_and_non_negative() -> None:
    # A float size (12.9 -> 12: 4 points), a negative visit count (0), a fractional open count (1.7 -> 1).
    messy = {
        "Title": "Software Engineer",
        "Company_Size__c": 12.9,
        "Website_Visits__c": -2,
        "Emails_Opened__c": 1.7,
        "Called_Business__c": True,
        "LeadSource": "Partner",
    }
    assert score(messy, {}) == 5 + 0 + 4 + 0 + 2 + 10 + 2


def test_score_of_an_empty_contact_is_zero() -> None:
    assert score({}, {}) == 0
