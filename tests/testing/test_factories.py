"""Test-record factories: the template's fields, "{n}" sequences, and defaults for required fields."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from circuit_host.bundles.manifest import read_manifest
from circuit_host.circuitdb import open_store
from circuit_host.errors import DmlError
from circuit_host.testing.factories import create_records, parse_template

from .conftest import LAB


@pytest.fixture
def schema(tmp_path: Path) -> Any:
    store = open_store(tmp_path / "records.db")
    store.apply_schema(read_manifest(LAB / "circuit.toml").schema_changes())
    try:
        yield store.schema
    finally:
        store.close()


def recording() -> tuple[list[tuple[str, list[dict[str, Any]]]], Any]:
    inserted: list[tuple[str, list[dict[str, Any]]]] = []

    def insert(object_name: str, rows: list[dict[str, Any]]) -> list[str]:
        inserted.append((object_name, rows))
        return [f"{object_name}-{len(inserted)}-{i}" for i in range(len(rows))]

    return inserted, insert


def test_required_fields_get_defaults_and_one_shared_parent(schema: Any) -> None:
    inserted, insert = recording()
    ids = create_records(schema, "widget__c", {"count": 2, "fields": {"Size__c": 7, "Code__c": "W-{n}"}}, insert)
    assert ids == ["Widget__c-2-0", "Widget__c-2-1"]
    (account_object, accounts), (widget_object, widgets) = inserted
    assert account_object == "Account" and accounts == [{"Name": "Test Name 0"}]
    assert widget_object == "Widget__c"
    assert widgets == [
        {"Size__c": 7, "Code__c": "W-0", "Kind__c": "Small", "Due__c": "2024-01-01", "Owner__c": "Account-1-0"},
        {"Size__c": 7, "Code__c": "W-1", "Kind__c": "Small", "Due__c": "2024-01-01", "Owner__c": "Account-1-0"},
    ]


def test_defaults_are_distinct_per_row_for_unique_fields(schema: Any) -> None:
    inserted, insert = recording()
    create_records(schema, "Widget__c", {"count": 3, "fields": {"Owner__c": "001x"}}, insert)
    codes = [row["Code__c"] for row in inserted[0][1]]
    assert len(set(codes)) == 3 and all(len(code) <= 20 for code in codes)


def test_contact_needs_only_a_last_name(schema: Any) -> None:
    inserted, insert = recording()
    create_records(schema, "Contact", None, insert)
    assert inserted == [("Contact", [{"LastName": "Test LastName 0"}])]


@pytest.mark.parametrize(
    ("template", "message"),
    [
        ([], "template must be a map"),
        ({"count": 0}, "count must be an int from 1 to 10000"),
        ({"count": True}, "count must be an int"),
        ({"fields": []}, "fields must be a map"),
        ({"rows": 3}, "unknown field"),
    ],
)
def test_bad_templates_are_refused(template: Any, message: str) -> None:
    with pytest.raises(DmlError, match=message):
        parse_template(template)


def test_an_unknown_object_is_refused(schema: Any) -> None:
    _, insert = recording()
    with pytest.raises(DmlError, match="no object 'Nope__c'"):
        create_records(schema, "Nope__c", None, insert)
