"""GoHighLevel's field names as Salesforce-style circuit field names, for the connector and the webhooks.

Circuits keep Salesforce's field names; ``CONTACT_FIELDS`` and ``TASK_FIELDS`` map them to
GHL's. Custom fields are ``{key}__c`` (``contact.company_size`` -> ``company_size__c``).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from ....errors import DmlError, QueryError
from ....soql.parser import Scalar

CONTACT_FIELDS = {
    "Id": "id",
    "FirstName": "firstName",
    "LastName": "lastName",
    "Email": "email",
    "Phone": "phone",
    "MailingStreet": "address1",
    "MailingCity": "city",
    "MailingState": "state",
    "MailingPostalCode": "postalCode",
    "MailingCountry": "country",
    "LeadSource": "source",
    "Website": "website",
    "Birthdate": "dateOfBirth",
    "CompanyName": "companyName",
    "OwnerId": "assignedTo",
    "DoNotCall": "dnd",
    "CreatedDate": "dateAdded",
    "LastModifiedDate": "dateUpdated",
}
"""Salesforce-style Contact field -> GHL contact property."""

TASK_FIELDS = {
    "Id": "id",
    "Subject": "title",
    "Description": "body",
    "ActivityDate": "dueDate",  # a date here, a datetime in GHL (midnight UTC)
    "Status": "completed",  # "Completed" <-> true, anything else <-> false
    "OwnerId": "assignedTo",
    "WhoId": "contactId",
}
"""Salesforce-style Task field -> GHL task property. Tasks live under their contact (WhoId)."""

UNSTORED_TASK_FIELDS = frozenset({"priority"})
"""Salesforce Task fields GHL tasks have no property for: accepted in DML (so a circuit written for
Salesforce runs unchanged) and not sent; a query cannot select them."""

READ_ONLY = frozenset({"id", "createddate", "lastmodifieddate"})
_OBJECTS = {"contact": ("Contact", CONTACT_FIELDS), "task": ("Task", TASK_FIELDS)}


def object_fields(object_name: str, error: type[QueryError] | type[DmlError]) -> tuple[str, dict[str, str]]:
    if object_name.lower() not in _OBJECTS:
        raise error(f"GoHighLevel: object {object_name} is not supported (only Contact and Task)")
    return _OBJECTS[object_name.lower()]


def field_name(fields: Mapping[str, str], name: str) -> str | None:
    """The canonical circuit name of ``name`` in ``fields`` (SOQL names ignore case)."""
    return next((k for k in fields if k.lower() == name.lower()), None)


def record_from_ghl(object_name: str, item: Mapping[str, Any]) -> dict[str, Any]:
    """The mapped properties ``item`` (a GHL contact or task) carries, under their circuit names.

    Needs no connector, and keeps only the properties present, so a partial payload (a webhook)
    does not null the fields it omits. ``id`` becomes ``Id``; custom fields are left to the caller.
    """
    _, fields = object_fields(object_name, QueryError)
    return {name: value_from_ghl(name, item[prop]) for name, prop in fields.items() if prop in item}


def custom_field_circuit_name(key: str) -> str:
    """The default circuit name of a GHL custom field key: ``contact.company_size`` -> ``company_size__c``."""
    return key.removeprefix("contact.") + "__c"


def value_from_ghl(name: str, value: Any) -> Any:
    if name == "Status":
        return "Completed" if value is True else "Not Started"
    if name in ("ActivityDate", "Birthdate") and isinstance(value, str):
        return value[:10]
    if isinstance(value, list):
        return ";".join(str(v) for v in value)
    if isinstance(value, dict):
        return None
    return value


def value_to_ghl(name: str, value: Scalar) -> Any:
    if name == "Status":
        return isinstance(value, str) and value.lower() == "completed"
    if name == "ActivityDate" and isinstance(value, str) and len(value) == 10:
        return f"{value}T00:00:00.000Z"
    return value
