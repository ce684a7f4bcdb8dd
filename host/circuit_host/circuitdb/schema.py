"""The schema model: field types, field and object definitions, the standard objects.

Names are case-insensitive, as in Salesforce: lookups go through the lower-cased ``key``,
and definitions keep the declared casing for results and messages. Custom objects and fields
end in ``__c``. Definitions are immutable; a registry (``Schema``) is a snapshot that the
store replaces as a whole when a migration lands.
"""

from __future__ import annotations

import hashlib
import re
import secrets
import string
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field, replace
from enum import StrEnum
from typing import Any

from ..errors import Rejected

CUSTOM_NAME = re.compile(r"[A-Za-z][A-Za-z0-9_]{0,37}__c")
"""A custom object or field name; ``fullmatch`` it."""
MAX_TEXT_LENGTH = 131_072
MAX_PRECISION = 18

_BASE62 = string.digits + string.ascii_uppercase + string.ascii_lowercase


class FieldType(StrEnum):
    ID = "id"
    TEXT = "text"
    NUMBER = "number"
    BOOLEAN = "boolean"
    DATE = "date"
    DATETIME = "datetime"
    EMAIL = "email"
    PHONE = "phone"
    PICKLIST = "picklist"
    REFERENCE = "reference"
    JSON = "json"


TEXT_LIKE = frozenset({FieldType.TEXT, FieldType.EMAIL, FieldType.PHONE, FieldType.PICKLIST})
"""Stored as text and compared case-insensitively."""
KEYABLE = frozenset({FieldType.TEXT, FieldType.EMAIL, FieldType.PHONE, FieldType.NUMBER})
"""Types that may be unique or an external id."""


@dataclass(frozen=True)
class FieldDef:
    """One field. ``scale`` None means a floating-point number; 0 an integer.

    ``values`` are a picklist's values; a ``restricted`` picklist accepts only those (custom
    picklists are restricted, standard ones are not, as in Salesforce). ``multi`` makes a
    multi-select picklist, whose value is its selections joined with ``;``. ``reference_to``
    names the referenced objects; more than one makes a polymorphic reference (Task.WhoId).
    ``external_id`` implies ``unique``. ``system`` fields are maintained by the store.
    """

    name: str
    type: FieldType
    required: bool = False
    default: Any = None
    unique: bool = False
    external_id: bool = False
    reference_to: tuple[str, ...] = ()
    values: tuple[str, ...] = ()
    multi: bool = False
    restricted: bool = True
    precision: int = MAX_PRECISION
    scale: int | None = None
    length: int = 255
    label: str = ""
    system: bool = False

    @property
    def key(self) -> str:
        return self.name.lower()

    @property
    def is_unique(self) -> bool:
        return self.unique or self.external_id

    @property
    def is_integer(self) -> bool:
        return self.type is FieldType.NUMBER and self.scale == 0

    @property
    def relationship(self) -> str | None:
        """The name a query uses to reach the referenced record: AccountId -> Account, Foo__c -> Foo__r."""
        if self.type is not FieldType.REFERENCE:
            return None
        if self.name.endswith("__c"):
            return self.name[:-3] + "__r"
        if self.name.lower().endswith("id") and len(self.name) > 2:
            return self.name[:-2]
        return None

    def to_json(self) -> dict[str, Any]:
        data: dict[str, Any] = {"name": self.name, "type": self.type.value}
        for name, default in _FIELD_DEFAULTS.items():
            value = getattr(self, name)
            if value != default:
                data[name] = list(value) if isinstance(value, tuple) else value
        return data

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> FieldDef:
        args = dict(data)
        args["type"] = FieldType(args["type"])
        for name in ("reference_to", "values"):
            if name in args:
                args[name] = tuple(args[name])
        return cls(**args)


_FIELD_DEFAULTS = {name: f.default for name, f in FieldDef.__dataclass_fields__.items() if name not in ("name", "type")}


@dataclass(frozen=True)
class ObjectDef:
    """One object (a table): its Id prefix and fields, system fields included."""

    name: str
    prefix: str
    fields: tuple[FieldDef, ...]
    label: str = ""
    custom: bool = False
    _by_key: dict[str, FieldDef] = field(default_factory=dict, compare=False, repr=False)
    _by_relationship: dict[str, FieldDef] = field(default_factory=dict, compare=False, repr=False)

    def __post_init__(self) -> None:
        for f in self.fields:
            self._by_key[f.key] = f
            if f.relationship is not None:
                self._by_relationship[f.relationship.lower()] = f

    @property
    def key(self) -> str:
        return self.name.lower()

    def field(self, name: str) -> FieldDef | None:
        return self._by_key.get(name.lower())

    def reference(self, relationship: str) -> FieldDef | None:
        """The reference field behind a relationship name (``Account`` on Contact)."""
        return self._by_relationship.get(relationship.lower())

    def with_field(self, f: FieldDef) -> ObjectDef:
        """This object with ``f`` added, or replacing the field of the same name."""
        return self.with_fields((f,))

    def with_fields(self, fields: Iterable[FieldDef]) -> ObjectDef:
        """This object with ``fields`` added in order, each moving a field of the same name to the end.

        One pass over the fields, however many are added (a schema of thousands is built this way).
        """
        by_key = {existing.key: existing for existing in self.fields}
        for f in fields:
            by_key.pop(f.key, None)
            by_key[f.key] = f
        return replace(self, fields=tuple(by_key.values()), _by_key={}, _by_relationship={})


class Schema:
    """A tenant's objects by lower-cased name; an immutable snapshot."""

    def __init__(self, objects: Iterable[ObjectDef]) -> None:
        self._objects = {o.key: o for o in objects}
        self._by_prefix = {o.prefix: o for o in self._objects.values()}

    def object(self, name: str) -> ObjectDef | None:
        return self._objects.get(name.lower())

    def by_prefix(self, prefix: str) -> ObjectDef | None:
        return self._by_prefix.get(prefix)

    @property
    def objects(self) -> list[ObjectDef]:
        return list(self._objects.values())


# --- ids ---------------------------------------------------------------------------------

STANDARD_PREFIXES = {
    "account": "001",
    "contact": "003",
    "user": "005",
    "opportunity": "006",
    "lead": "00Q",
    "task": "00T",
}


def record_id_prefix(object_name: str, attempt: int = 0) -> str:
    """The 3-character Id prefix: Salesforce's for standard objects, else derived from the name.

    A derived prefix starts with ``a``; ``attempt`` > 0 gives the alternatives a tenant uses
    when two of its custom objects would collide. The prefix chosen is stored with the object.
    """
    key = object_name.lower()
    if key in STANDARD_PREFIXES and attempt == 0:
        return STANDARD_PREFIXES[key]
    seed = key if attempt == 0 else f"{key}#{attempt}"
    n = int.from_bytes(hashlib.sha256(seed.encode()).digest()[:4], "big") % (62 * 62)
    return "a" + _BASE62[n // 62] + _BASE62[n % 62]


def new_record_id(prefix: str) -> str:
    """A fresh 18-character Id: the object prefix and 15 random base62 characters."""
    return new_record_ids(prefix, 1)[0]


_ID_RANDOM = 15  # random characters per Id: 62**15 (~8.9e26) choices
_UNBIASED = 248  # 4 * 62: a byte below it maps to base62 without bias; the others are dropped
_TO_BASE62 = bytes.maketrans(bytes(range(_UNBIASED)), (_BASE62 * 4).encode("ascii"))  # byte b -> _BASE62[b % 62]
_BIASED = bytes(range(_UNBIASED, 256))


def new_record_ids(prefix: str, count: int) -> list[str]:
    """``count`` fresh Ids from one ``os.urandom`` read (rarely two): the same characters as
    ``secrets.choice`` per character would give, at a fraction of the system calls."""
    wanted = count * _ID_RANDOM
    text = ""
    while len(text) < wanted:
        # 3% of bytes are dropped on average; 10% extra plus a few makes a second read rare.
        short = wanted - len(text)
        text += secrets.token_bytes(short + short // 10 + 8).translate(_TO_BASE62, _BIASED).decode("ascii")
    return [prefix + text[i : i + _ID_RANDOM] for i in range(0, wanted, _ID_RANDOM)]


def is_record_id(value: str, prefix: str | None = None) -> bool:
    """Whether ``value`` has the shape of an Id (of the object with ``prefix``, if given)."""
    return len(value) == 18 and not value.strip(_BASE62) and (prefix is None or value.startswith(prefix))


# --- standard objects --------------------------------------------------------------------


def _text(name: str, length: int = 255, **kw: Any) -> FieldDef:
    return FieldDef(name, FieldType.TEXT, length=length, **kw)


def _picklist(name: str, *values: str, **kw: Any) -> FieldDef:
    return FieldDef(name, FieldType.PICKLIST, values=values, restricted=False, length=255, **kw)


def _ref(name: str, *targets: str, **kw: Any) -> FieldDef:
    return FieldDef(name, FieldType.REFERENCE, reference_to=targets, **kw)


def _number(name: str, precision: int = 18, scale: int | None = 0) -> FieldDef:
    return FieldDef(name, FieldType.NUMBER, precision=precision, scale=scale)


def _address(prefix: str) -> list[FieldDef]:
    return [
        _text(f"{prefix}Street", 255),
        _text(f"{prefix}City", 40),
        _text(f"{prefix}State", 80),
        _text(f"{prefix}PostalCode", 20),
        _text(f"{prefix}Country", 80),
    ]


SYSTEM_FIELDS = (
    FieldDef("Id", FieldType.ID, system=True),
    FieldDef("IsDeleted", FieldType.BOOLEAN, system=True),
    FieldDef("CreatedDate", FieldType.DATETIME, system=True),
    FieldDef("LastModifiedDate", FieldType.DATETIME, system=True),
)
SYSTEM_KEYS = frozenset(f.key for f in SYSTEM_FIELDS)

_INDUSTRIES = (
    "Agriculture", "Banking", "Communications", "Consulting", "Education", "Electronics", "Energy",
    "Finance", "Healthcare", "Hospitality", "Insurance", "Manufacturing", "Media", "Retail",
    "Technology", "Transportation", "Other",
)  # fmt: skip
_LEAD_SOURCES = ("Web", "Phone Inquiry", "Partner Referral", "Purchased List", "Other")
_RATINGS = ("Hot", "Warm", "Cold")


def _standard(name: str, label: str, fields: list[FieldDef]) -> ObjectDef:
    return ObjectDef(name, STANDARD_PREFIXES[name.lower()], (*SYSTEM_FIELDS, *fields), label=label)


STANDARD_OBJECTS: tuple[ObjectDef, ...] = (
    _standard(
        "User",
        "User",
        [
            _text("Username", 80, required=True, unique=True),
            FieldDef("Email", FieldType.EMAIL, required=True, length=128),
            _text("FirstName", 40),
            _text("LastName", 80, required=True),
            _text("Alias", 8),
            _text("Title", 80),
            _text("Department", 80),
            FieldDef("Phone", FieldType.PHONE, length=40),
            FieldDef("IsActive", FieldType.BOOLEAN, default=True),
        ],
    ),
    _standard(
        "Account",
        "Account",
        [
            _text("Name", 255, required=True),
            _text("AccountNumber", 40),
            _picklist("Type", "Prospect", "Customer - Direct", "Customer - Channel", "Partner", "Other"),
            _picklist("Industry", *_INDUSTRIES),
            _picklist("Rating", *_RATINGS),
            _text("Website", 255),
            FieldDef("Phone", FieldType.PHONE, length=40),
            FieldDef("Fax", FieldType.PHONE, length=40),
            _number("NumberOfEmployees", 8, 0),
            _number("AnnualRevenue", 18, 2),
            _text("Description", 32_000),
            *_address("Billing"),
            *_address("Shipping"),
            _ref("ParentId", "Account"),
            _ref("OwnerId", "User"),
        ],
    ),
    _standard(
        "Contact",
        "Contact",
        [
            _picklist("Salutation", "Mr.", "Ms.", "Mrs.", "Dr.", "Prof."),
            _text("FirstName", 40),
            _text("LastName", 80, required=True),
            FieldDef("Email", FieldType.EMAIL, length=80),
            FieldDef("Phone", FieldType.PHONE, length=40),
            FieldDef("MobilePhone", FieldType.PHONE, length=40),
            _text("Title", 128),
            _text("Department", 80),
            FieldDef("Birthdate", FieldType.DATE),
            _ref("AccountId", "Account"),
            _ref("ReportsToId", "Contact"),
            _picklist("LeadSource", *_LEAD_SOURCES),
            *_address("Mailing"),
            FieldDef("DoNotCall", FieldType.BOOLEAN),
            FieldDef("HasOptedOutOfEmail", FieldType.BOOLEAN),
            _text("Description", 32_000),
            _ref("OwnerId", "User"),
        ],
    ),
    _standard(
        "Lead",
        "Lead",
        [
            _picklist("Salutation", "Mr.", "Ms.", "Mrs.", "Dr.", "Prof."),
            _text("FirstName", 40),
            _text("LastName", 80, required=True),
            _text("Company", 255, required=True),
            _text("Title", 128),
            FieldDef("Email", FieldType.EMAIL, length=80),
            FieldDef("Phone", FieldType.PHONE, length=40),
            FieldDef("MobilePhone", FieldType.PHONE, length=40),
            _text("Website", 255),
            _picklist(
                "Status",
                "Open - Not Contacted",
                "Working - Contacted",
                "Closed - Converted",
                "Closed - Not Converted",
                required=True,
                default="Open - Not Contacted",
            ),
            _picklist("LeadSource", *_LEAD_SOURCES),
            _picklist("Industry", *_INDUSTRIES),
            _picklist("Rating", *_RATINGS),
            _number("AnnualRevenue", 18, 2),
            _number("NumberOfEmployees", 8, 0),
            *_address(""),
            FieldDef("IsConverted", FieldType.BOOLEAN),
            _ref("ConvertedAccountId", "Account"),
            _ref("ConvertedContactId", "Contact"),
            _ref("ConvertedOpportunityId", "Opportunity"),
            _text("Description", 32_000),
            _ref("OwnerId", "User"),
        ],
    ),
    _standard(
        "Opportunity",
        "Opportunity",
        [
            _text("Name", 120, required=True),
            _picklist(
                "StageName",
                "Prospecting",
                "Qualification",
                "Needs Analysis",
                "Value Proposition",
                "Proposal/Price Quote",
                "Negotiation/Review",
                "Closed Won",
                "Closed Lost",
                required=True,
            ),
            FieldDef("CloseDate", FieldType.DATE, required=True),
            _number("Amount", 16, 2),
            _number("Probability", 3, 0),
            _ref("AccountId", "Account"),
            _picklist("Type", "New Customer", "Existing Customer - Upgrade", "Existing Customer - Replacement"),
            _picklist("LeadSource", *_LEAD_SOURCES),
            _text("NextStep", 255),
            FieldDef("IsClosed", FieldType.BOOLEAN),
            FieldDef("IsWon", FieldType.BOOLEAN),
            _text("Description", 32_000),
            _ref("OwnerId", "User"),
        ],
    ),
    _standard(
        "Task",
        "Task",
        [
            _text("Subject", 255),
            _picklist(
                "Status",
                "Not Started",
                "In Progress",
                "Completed",
                "Waiting on someone else",
                "Deferred",
                required=True,
                default="Not Started",
            ),
            _picklist("Priority", "High", "Normal", "Low", required=True, default="Normal"),
            _picklist("Type", "Call", "Email", "Meeting", "Other"),
            FieldDef("ActivityDate", FieldType.DATE),
            _ref("WhoId", "Contact", "Lead"),
            _ref("WhatId", "Account", "Opportunity"),
            _ref("OwnerId", "User"),
            FieldDef("IsClosed", FieldType.BOOLEAN),
            _text("Description", 32_000),
        ],
    ),
)
STANDARD_NAMES = frozenset(o.key for o in STANDARD_OBJECTS)


CUSTOM_BASE_FIELDS = (*SYSTEM_FIELDS, _text("Name", 80))
"""What every custom object has before its declaration adds (or redefines Name)."""


def custom_object(name: str, prefix: str, label: str = "", fields: Iterable[FieldDef] = ()) -> ObjectDef:
    """A custom object: the system fields, a Name text field, then ``fields`` (which may redefine Name)."""
    return ObjectDef(name, prefix, CUSTOM_BASE_FIELDS, label=label or name, custom=True).with_fields(fields)


# --- validation --------------------------------------------------------------------------


def check_custom_name(name: object, what: str, where: str) -> str:
    if not isinstance(name, str) or not CUSTOM_NAME.fullmatch(name):
        raise Rejected(
            f"{where}: {what} name {name!r} must start with a letter, use only letters, digits and _, "
            "end in __c and be at most 41 characters"
        )
    if "__" in name[:-3]:
        raise Rejected(f"{where}: {what} name {name!r} must not contain '__' before the __c suffix")
    return name


def incompatible_change(old: FieldDef, new: FieldDef) -> str | None:
    """Why ``new`` cannot replace ``old`` in place, or None when only metadata changes."""
    if old.type is not new.type:
        return f"its type is {old.type}; changing it to {new.type} is not supported"
    if old.multi != new.multi:
        return "changing a picklist between single and multi-select is not supported"
    if old.type is FieldType.NUMBER and (old.scale == 0) != (new.scale == 0):
        return "changing a number between integer (scale 0) and decimal is not supported"
    if {t.lower() for t in old.reference_to} != {t.lower() for t in new.reference_to}:
        return "changing what a reference points to is not supported"
    if old.is_unique != new.is_unique:
        return "changing unique / external_id on an existing field is not supported"
    return None


# --- limits ------------------------------------------------------------------------------

MAX_CUSTOM_OBJECTS = 500
"""Custom objects per tenant environment by default (Salesforce: 200 on Enterprise, 2,000 on Unlimited)."""
MAX_CUSTOM_FIELDS_PER_OBJECT = 500
"""Custom fields per object by default (Salesforce: 500 on Enterprise, 800 on Unlimited)."""
CEILING_CUSTOM_OBJECTS = 2_000
"""The most an operator may allow one tenant environment."""
CEILING_CUSTOM_FIELDS_PER_OBJECT = 800
"""The most an operator may allow per object: a table stays well inside PostgreSQL's 1,600 columns."""


@dataclass(frozen=True)
class SchemaLimits:
    """How large one tenant environment's schema may grow; a change past either is ``Rejected``.

    Counted after the change: custom objects, and per object (standard ones too) its ``__c``
    fields. A schema already past a limit (lowered since) may be re-applied, not grown.
    """

    max_custom_objects: int = MAX_CUSTOM_OBJECTS
    max_custom_fields_per_object: int = MAX_CUSTOM_FIELDS_PER_OBJECT
