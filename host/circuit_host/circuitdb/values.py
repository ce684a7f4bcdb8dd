"""Field values across the ABI: checked and coerced on the way in, made scalar on the way out.

Outgoing values follow the records contract: dates ``YYYY-MM-DD``, datetimes
``YYYY-MM-DDTHH:MM:SS.sssZ`` (UTC), numbers an int when the field's scale is 0 else a float,
json fields their JSON text, a multi-select picklist its values joined with ``;``.
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Callable
from datetime import UTC, date, datetime
from decimal import ROUND_HALF_UP, Decimal
from typing import Any

from .schema import FieldDef, FieldType, is_record_id

INT64_MIN, INT64_MAX = -(2**63), 2**63 - 1
EMAIL = re.compile(
    r"[A-Za-z0-9.!#$%&'*+/=?^_`{|}~-]+@[A-Za-z0-9](?:[A-Za-z0-9-]*[A-Za-z0-9])?"
    r"(?:\.[A-Za-z0-9](?:[A-Za-z0-9-]*[A-Za-z0-9])?)+"
)
_DATE = re.compile(r"[0-9]{4}-[0-9]{2}-[0-9]{2}")


class ValueProblem(Exception):
    """A value does not fit its field; the message completes ``row i: field F: ...``."""


def shown(value: object) -> str:
    """A caller-supplied value for an error message, cut short."""
    text = repr(value)
    return text if len(text) <= 60 else text[:57] + "..."


def to_storage(f: FieldDef, value: object) -> Any:
    """The column value for a DML value of field ``f``; ``ValueProblem`` says what is wrong."""
    if value is None:
        return False if f.type is FieldType.BOOLEAN else None
    return _TO_STORAGE[f.type](f, value)


def storer(f: FieldDef) -> Callable[[object], Any]:
    """``to_storage`` for field ``f`` with the dispatch done once: a DML converts every cell.

    Plain text within its length is passed through without further calls; anything else takes
    the same path as ``to_storage``, so the value and the error are the same.
    """
    if f.type is FieldType.BOOLEAN:
        return lambda value: False if value is None else _boolean(f, value)
    convert = _TO_STORAGE[f.type]
    if f.type in (FieldType.TEXT, FieldType.PHONE):
        length = f.length

        def text(value: object) -> Any:
            if type(value) is str and len(value) <= length:
                return value
            return None if value is None else convert(f, value)

        return text
    if f.type is FieldType.EMAIL:
        length, matches = f.length, EMAIL.fullmatch

        def email(value: object) -> Any:
            if type(value) is str and len(value) <= length and matches(value):
                return value
            return None if value is None else convert(f, value)

        return email
    return lambda value: None if value is None else convert(f, value)


def _boolean(f: FieldDef, value: object) -> bool:
    if not isinstance(value, bool):
        raise ValueProblem(f"expected true or false, got {_kind(value)}")
    return value


def _string(f: FieldDef, value: object) -> str:
    if not isinstance(value, str):
        raise ValueProblem(f"expected {_expected(f.type)}, got {_kind(value)}")
    return value


def _text(f: FieldDef, value: object) -> str:
    text = _string(f, value)
    if len(text) > f.length:
        raise ValueProblem(f"is longer than {f.length} characters")
    return text


def _email(f: FieldDef, value: object) -> str:
    text = _text(f, value)
    if not EMAIL.fullmatch(text):
        raise ValueProblem(f"{shown(text)} is not a valid email address")
    return text


def _record_id(f: FieldDef, value: object) -> str:
    text = _string(f, value)
    if not is_record_id(text):
        raise ValueProblem(f"{shown(text)} is not an 18-character record Id")
    return text


def _json(f: FieldDef, value: object) -> Any:
    try:
        return json.loads(_string(f, value))
    except ValueError as e:
        raise ValueProblem(f"is not valid JSON ({e})") from None


# One converter per type, looked up once per value instead of a chain of type tests.
_TO_STORAGE: dict[FieldType, Callable[[FieldDef, object], Any]] = {
    FieldType.ID: _record_id,
    FieldType.REFERENCE: _record_id,
    FieldType.TEXT: _text,
    FieldType.PHONE: _text,
    FieldType.EMAIL: _email,
    FieldType.PICKLIST: lambda f, value: _picklist(f, _text(f, value)),
    FieldType.NUMBER: lambda f, value: _number(f, value),
    FieldType.BOOLEAN: _boolean,
    FieldType.DATE: lambda f, value: parse_date(_string(f, value)),
    FieldType.DATETIME: lambda f, value: parse_datetime(_string(f, value)),
    FieldType.JSON: _json,
}


def from_storage(f: FieldDef, value: Any) -> bool | int | float | str | None:
    """The ABI scalar for a column value of field ``f``."""
    if f.type is FieldType.BOOLEAN:
        return bool(value)
    if value is None:
        return None
    if f.type is FieldType.NUMBER:
        return int(value) if f.scale == 0 else float(value)
    if f.type is FieldType.DATE:
        return value.isoformat() if isinstance(value, date) else str(value)
    if f.type is FieldType.DATETIME:
        return format_datetime(value)
    if f.type is FieldType.JSON:
        return json.dumps(value, separators=(",", ":"), ensure_ascii=False)
    return str(value)


def reader(f: FieldDef) -> Callable[[Any], bool | int | float | str | None]:
    """``from_storage`` for field ``f`` with the type dispatch done once: a query reads every cell."""
    if f.type is FieldType.BOOLEAN:
        return bool
    if f.type in (FieldType.NUMBER, FieldType.DATE, FieldType.DATETIME, FieldType.JSON):
        return lambda value: from_storage(f, value)
    return text_out


def text_out(value: Any) -> str | None:
    """The reader of text-like fields: a string as is."""
    return None if value is None else value if type(value) is str else str(value)


def format_datetime(value: datetime) -> str:
    if value.tzinfo is None:
        value = value.replace(tzinfo=UTC)
    return value.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3] + "Z"


def parse_date(text: str) -> date:
    if not _DATE.fullmatch(text):
        raise ValueProblem(f"{shown(text)} is not a date (YYYY-MM-DD)")
    try:
        return date.fromisoformat(text)
    except ValueError:
        raise ValueProblem(f"{shown(text)} is not a valid date") from None


def parse_datetime(text: str) -> datetime:
    """An ISO-8601 datetime; without an offset it is UTC. Kept to the millisecond."""
    if len(text) < 19 or not _DATE.fullmatch(text[:10]) or text[10] not in "T ":
        raise ValueProblem(f"{shown(text)} is not a datetime (YYYY-MM-DDTHH:MM:SS.sssZ)")
    try:
        value = datetime.fromisoformat(text)
    except ValueError:
        raise ValueProblem(f"{shown(text)} is not a valid datetime") from None
    if value.tzinfo is None:
        value = value.replace(tzinfo=UTC)
    value = value.astimezone(UTC)
    return value.replace(microsecond=value.microsecond // 1000 * 1000)


def now() -> datetime:
    value = datetime.now(UTC)
    return value.replace(microsecond=value.microsecond // 1000 * 1000)


def _number(f: FieldDef, value: object) -> int | float:
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise ValueProblem(f"expected a number, got {_kind(value)}")
    if isinstance(value, float) and not math.isfinite(value):
        raise ValueProblem("number must be finite")
    if f.scale is None:
        if isinstance(value, int) and not INT64_MIN <= value <= INT64_MAX:
            raise ValueProblem("integer out of 64-bit range")
        return float(value)
    # Salesforce rounds to the field's scale (half up) and refuses more integer digits than fit.
    rounded = Decimal(repr(value)).quantize(Decimal(1).scaleb(-f.scale), rounding=ROUND_HALF_UP)
    digits = f.precision - f.scale
    if abs(rounded) >= Decimal(10) ** digits:
        raise ValueProblem(f"{shown(value)} has more than {digits} digits before the decimal point")
    return int(rounded) if f.scale == 0 else float(rounded)


def _picklist(f: FieldDef, value: str) -> str | None:
    if not value.strip():
        return None  # no selection
    allowed = {v.lower(): v for v in f.values}
    chosen = [part.strip() for part in value.split(";")] if f.multi else [value]
    result: list[str] = []
    for part in chosen:
        if not part:
            raise ValueProblem(f"{shown(value)} has an empty selection")
        canonical = allowed.get(part.lower())
        if canonical is None:
            if f.restricted:
                raise ValueProblem(f"{shown(part)} is not one of the picklist values")
            canonical = part
        if canonical not in result:
            result.append(canonical)
    return ";".join(result)


def _expected(t: FieldType) -> str:
    return {
        FieldType.DATE: "a date string (YYYY-MM-DD)",
        FieldType.DATETIME: "a datetime string (YYYY-MM-DDTHH:MM:SS.sssZ)",
        FieldType.JSON: "a JSON text string",
        FieldType.ID: "an Id string",
        FieldType.REFERENCE: "an Id string",
    }.get(t, "a string")


def _kind(value: object) -> str:
    if isinstance(value, bool):
        return "a boolean"
    if isinstance(value, int | float):
        return "a number"
    if isinstance(value, str):
        return "a string"
    return f"a value of type {type(value).__name__}"
