"""The ``[schema]`` part of a circuit's ``circuit.toml``: custom objects and fields.

```toml
[[schema.objects]]               # a custom object (gets Id, Name and the system fields)
name = "Circuit_Setting__c"
label = "Circuit Setting"
  [[schema.objects.fields]]
  name = "Value__c"
  type = "text"
  length = 1000

[[schema.fields]]                # a custom field on any object
object = "Contact"
name = "VLPR_Grade__c"
type = "picklist"
values = ["A", "B", "C", "D"]
```

Field keys: name, type (see ``FieldType``), label, required, default, unique, external_id,
reference_to (an object or a list), values, multi, restricted, precision, scale, length.
Other top-level tables of the manifest are ignored here. Errors are ``Rejected`` naming the
entry, e.g. ``circuit.toml: schema.fields[2] (Contact.Score__c): unknown key 'lenght'``.
"""

from __future__ import annotations

import tomllib
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from ..errors import Rejected
from .field_checks import check_field
from .schema import FieldDef, FieldType, check_custom_name, custom_object
from .store import SchemaChanges

_FIELD_KEYS: dict[str, type | tuple[type, ...]] = {
    "name": str,
    "type": str,
    "label": str,
    "required": bool,
    "default": (str, int, float, bool),
    "unique": bool,
    "external_id": bool,
    "reference_to": (str, list),
    "values": list,
    "multi": bool,
    "restricted": bool,
    "precision": int,
    "scale": int,
    "length": int,
}


def read_schema(path: Path) -> SchemaChanges:
    """The schema declared by the manifest at ``path``; an empty one if it declares none."""
    try:
        document = tomllib.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError) as e:
        raise Rejected(f"{path}: cannot read manifest: {e}") from None
    except tomllib.TOMLDecodeError as e:
        raise Rejected(f"{path}: invalid TOML: {e}") from None
    return parse_schema(document, path.name)


def parse_schema(document: Mapping[str, Any], source: str = "circuit.toml") -> SchemaChanges:
    """The ``[schema]`` table of a parsed manifest as definitions, validated entry by entry."""
    schema = document.get("schema", {})
    if not isinstance(schema, Mapping):
        raise Rejected(f"{source}: schema must be a table")
    unknown = set(schema) - {"objects", "fields"}
    if unknown:
        raise Rejected(f"{source}: schema: unknown key {sorted(unknown)[0]!r} (expected objects, fields)")
    objects = []
    for i, entry in enumerate(_tables(schema.get("objects", []), f"{source}: schema.objects")):
        where = f"{source}: schema.objects[{i}]"
        name = entry.get("name")
        if name is not None:
            where += f" ({name})"
        extra = set(entry) - {"name", "label", "fields"}
        if extra:
            raise Rejected(f"{where}: unknown key {sorted(extra)[0]!r}")
        name = check_custom_name(name, "object", where)
        label = entry.get("label", "")
        if not isinstance(label, str):
            raise Rejected(f"{where}: label must be a string")
        fields = []
        for j, raw in enumerate(_tables(entry.get("fields", []), f"{where}.fields")):
            field_where = f"{source}: schema.objects[{i}].fields[{j}]"
            f = _field(raw, field_where, name, set())
            if f.name.lower() != "name":
                check_custom_name(f.name, "field", f"{field_where} ({name}.{f.name})")
            fields.append(f)
        objects.append(custom_object(name, "", label, fields))
    added = []
    for i, raw in enumerate(_tables(schema.get("fields", []), f"{source}: schema.fields")):
        where = f"{source}: schema.fields[{i}]"
        object_name = raw.get("object")
        if not isinstance(object_name, str) or not object_name:
            raise Rejected(f"{where}: object (the object's name) is required")
        f = _field(raw, where, object_name, {"object"})
        check_custom_name(f.name, "field", f"{where} ({object_name}.{f.name})")
        added.append((object_name, f))
    return SchemaChanges(tuple(objects), tuple(added))


def _tables(value: object, where: str) -> list[Mapping[str, Any]]:
    if not isinstance(value, list) or not all(isinstance(item, Mapping) for item in value):
        raise Rejected(f"{where} must be an array of tables ([[...]])")
    return value


def _field(raw: Mapping[str, Any], where: str, object_name: str, also: set[str]) -> FieldDef:
    name = raw.get("name")
    if isinstance(name, str):
        where = f"{where} ({object_name}.{name})"
    for key, value in raw.items():
        if key in also:
            continue
        if key not in _FIELD_KEYS:
            raise Rejected(f"{where}: unknown key {key!r}")
        expected = _FIELD_KEYS[key]
        if not isinstance(value, expected) or (isinstance(value, bool) and expected is int):
            raise Rejected(f"{where}: {key} has the wrong type ({type(value).__name__})")
    if not isinstance(name, str):
        raise Rejected(f"{where}: name is required")
    type_name = raw.get("type")
    if not isinstance(type_name, str):
        raise Rejected(f"{where}: type is required ({', '.join(t.value for t in FieldType)})")
    try:
        field_type = FieldType(type_name)
    except ValueError:
        raise Rejected(f"{where}: unknown type {type_name!r} ({', '.join(t.value for t in FieldType)})") from None
    args: dict[str, Any] = {k: v for k, v in raw.items() if k in _FIELD_KEYS and k not in ("name", "type")}
    reference_to = args.get("reference_to")
    if isinstance(reference_to, str):
        args["reference_to"] = (reference_to,)
    elif reference_to is not None:
        if not all(isinstance(t, str) for t in reference_to):
            raise Rejected(f"{where}: reference_to must name objects")
        args["reference_to"] = tuple(reference_to)
    if "values" in args:
        args["values"] = tuple(args["values"])
    return check_field(FieldDef(name, field_type, **args), where)
