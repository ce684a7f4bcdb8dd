"""Test records from a template (``createTestContact``-style factories for every object).

The template gives the fields a test cares about; every required field it leaves out gets a
default for its type, so a factory keeps working when an admin adds a required field.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from ..circuitdb.schema import FieldDef, FieldType, ObjectDef, Schema
from ..errors import DmlError

MAX_TEST_RECORDS = 10_000
SEQUENCE_MARK = "{n}"

# Creates ``count`` records of an object (through DML, so triggers fire) and returns their ids.
Insert = Callable[[str, list[dict[str, Any]]], list[str]]


def parse_template(template: Any) -> tuple[int, dict[str, Any]]:
    """``{"count"?: int, "fields"?: record}`` -> (count, fields)."""
    if template is None:
        return 1, {}
    if not isinstance(template, dict):
        raise DmlError("template must be a map {count, fields}")
    unknown = set(template) - {"count", "fields"}
    if unknown:
        raise DmlError(f"template: unknown field(s) {', '.join(sorted(unknown))}")
    count = template.get("count", 1)
    if not isinstance(count, int) or isinstance(count, bool) or not 1 <= count <= MAX_TEST_RECORDS:
        raise DmlError(f"template: count must be an int from 1 to {MAX_TEST_RECORDS}")
    fields = template.get("fields")
    if fields is None:
        fields = {}
    if not isinstance(fields, dict):
        raise DmlError("template: fields must be a map of field name to value")
    return count, fields


def default_value(field: FieldDef, n: int, parent: Callable[[str], str]) -> Any:
    """A valid value for a required field of the record at index ``n`` (distinct per row)."""
    kind = field.type
    if kind is FieldType.EMAIL:
        return f"test{n}@example.com"
    if kind is FieldType.PHONE:
        return f"555-{n % 10000:04d}"
    if kind is FieldType.NUMBER:
        digits = field.precision - (field.scale or 0)
        return n % (10 ** max(digits, 1))
    if kind is FieldType.BOOLEAN:
        return False
    if kind is FieldType.DATE:
        return "2024-01-01"
    if kind is FieldType.DATETIME:
        return "2024-01-01T00:00:00.000Z"
    if kind is FieldType.PICKLIST:
        return field.values[0] if field.values else "Test"
    if kind is FieldType.REFERENCE:
        return parent(field.reference_to[0])
    if kind is FieldType.JSON:
        return "{}"
    return f"Test {field.name} {n}"[: field.length]


def build_rows(
    obj: ObjectDef, count: int, fields: dict[str, Any], parent: Callable[[str], str]
) -> list[dict[str, Any]]:
    """``count`` rows: the template's fields ("{n}" in str values = the row index), then defaults."""
    given = {name.lower() for name in fields}
    missing = [f for f in obj.fields if f.required and not f.system and f.default is None and f.key not in given]
    parents: dict[str, str] = {}

    def shared_parent(object_name: str) -> str:  # one parent record for all rows
        if object_name not in parents:
            parents[object_name] = parent(object_name)
        return parents[object_name]

    rows = []
    for n in range(count):
        row = {k: v.replace(SEQUENCE_MARK, str(n)) if isinstance(v, str) else v for k, v in fields.items()}
        for f in missing:
            row[f.name] = default_value(f, n, shared_parent)
        rows.append(row)
    return rows


def create_records(schema: Schema, object_name: str, template: Any, insert: Insert, depth: int = 0) -> list[str]:
    """Insert test records of ``object_name``; required references get one parent record each."""
    obj = schema.object(object_name)
    if obj is None:
        raise DmlError(f"no object {object_name!r}")
    if depth > 3:
        raise DmlError(f"{object_name}: required references nest too deeply for a default parent")
    count, fields = parse_template(template)

    def parent(name: str) -> str:
        return create_records(schema, name, None, insert, depth + 1)[0]

    return insert(obj.name, build_rows(obj, count, fields, parent))
