"""Validation of one field definition, default value included (which needs the value coercions)."""

from __future__ import annotations

import math

from ..errors import Rejected
from .schema import KEYABLE, MAX_PRECISION, MAX_TEXT_LENGTH, FieldDef, FieldType
from .values import ValueProblem, to_storage


def check_field(f: FieldDef, where: str) -> FieldDef:
    """Reject a definition that cannot be stored or enforced; returns ``f`` for chaining."""
    if not isinstance(f.type, FieldType):
        raise Rejected(f"{where}: unknown field type {f.type!r}")
    if f.type is FieldType.ID or f.system:
        raise Rejected(f"{where}: only the store defines Id and system fields")
    if f.is_unique and f.type not in KEYABLE:
        raise Rejected(f"{where}: a {f.type} field cannot be unique or an external id")
    if f.type is FieldType.REFERENCE and not f.reference_to:
        raise Rejected(f"{where}: a reference field needs reference_to")
    if f.type is not FieldType.REFERENCE and f.reference_to:
        raise Rejected(f"{where}: only a reference field takes reference_to")
    if f.type is FieldType.PICKLIST:
        if not f.values and f.restricted:
            raise Rejected(f"{where}: a restricted picklist needs values")
        seen: set[str] = set()
        for value in f.values:
            if not isinstance(value, str) or not value or ";" in value or value != value.strip():
                raise Rejected(f"{where}: picklist value {value!r} must be a non-empty string without ';'")
            if value.lower() in seen:
                raise Rejected(f"{where}: picklist value {value!r} is listed twice")
            seen.add(value.lower())
    elif f.values or f.multi:
        raise Rejected(f"{where}: only a picklist takes values and multi")
    if not 1 <= f.length <= MAX_TEXT_LENGTH:
        raise Rejected(f"{where}: length must be from 1 to {MAX_TEXT_LENGTH}")
    if not 1 <= f.precision <= MAX_PRECISION:
        raise Rejected(f"{where}: precision must be from 1 to {MAX_PRECISION}")
    if f.scale is not None and not 0 <= f.scale <= f.precision:
        raise Rejected(f"{where}: scale must be from 0 to the precision ({f.precision})")
    if f.default is not None:
        if f.type in (FieldType.REFERENCE, FieldType.JSON):
            raise Rejected(f"{where}: a {f.type} field cannot have a default")
        try:
            to_storage(f, f.default)
        except ValueProblem as e:
            raise Rejected(f"{where}: default {f.default!r}: {e}") from None
    if isinstance(f.default, float) and not math.isfinite(f.default):
        raise Rejected(f"{where}: default must be finite")
    return f
