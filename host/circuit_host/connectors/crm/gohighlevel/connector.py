"""GoHighLevel as the system of record: Contact and Task through the REST API v2.

Circuits keep Salesforce's field names (mapped in ``fields``), and ``Name__c`` fields map to
the location's custom fields by key (``contact.name``), resolved to ids from the location's
custom-field list (cached). Queries are limited to what the API can answer by id, email or
contact; anything else is a ``QueryError`` naming the unsupported part. Writes are queued in
the outbox like Salesforce's, one request per row.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Mapping, Sequence
from typing import Any

import httpx

from ....errors import DmlError, QueryError
from ....soql.parser import (
    Bind,
    Comparison,
    Condition,
    Constant,
    Field,
    In,
    Query,
    Scalar,
    bind_count,
    bind_list,
    bind_scalar,
    parse,
)
from ...records import DmlOp, DmlResult, QueryResult
from ..api import ApiClient, CrmError, CrmRequestError, shorten
from ..base import OutboxTransaction, check_object, check_row
from ..outbox import Delivery, DeliveryFailed, Outbox
from ..provisional import is_provisional
from .configuration import GoHighLevelSettings
from .fields import (
    READ_ONLY,
    UNSTORED_TASK_FIELDS,
    custom_field_circuit_name,
    field_name,
    object_fields,
    value_from_ghl,
    value_to_ghl,
)

_SUPPORTED = "Contact WHERE Id = x, Id IN x or Email = x; Task WHERE WhoId = x or WhoId IN x"


class GoHighLevelConnector:
    """A ``RecordsConnector`` for one GHL location, and the outbox sender for its tenant."""

    crm = "gohighlevel"

    def __init__(
        self,
        settings: GoHighLevelSettings,
        outbox: Outbox,
        tenant: str,
        *,
        transport: httpx.BaseTransport | None = None,
    ) -> None:
        self.settings = settings
        self.outbox = outbox
        self.tenant = tenant
        self.api = ApiClient("GoHighLevel", settings.root, settings.timeout_s, transport)
        self._custom: dict[str, dict[str, Any]] = {}  # fieldKey and id -> definition
        self._custom_at = -1e18
        self._lock = threading.Lock()
        self._closed = False

    def begin(self) -> GoHighLevelTransaction:
        if self._closed:
            raise RuntimeError("GoHighLevel connector is closed")
        return GoHighLevelTransaction(self)

    def close(self) -> None:
        if not self._closed:
            self._closed = True
            self.api.close()

    def request(self, method: str, path: str, **kwargs: Any) -> Any:
        headers = {
            "authorization": f"Bearer {self.settings.api_key.get_secret_value()}",
            "version": self.settings.api_version,
        }
        response = self.api.request(method, path, headers=headers, **kwargs)
        return response.json() if response.content else None

    def check_connection(self) -> None:
        """One cheap authenticated read (a one-contact search of the location); ``CrmError`` if it fails."""
        self.request("POST", "/contacts/search", json_body={"locationId": self.settings.location_id, "pageLimit": 1})

    # --- custom fields -----------------------------------------------------------------

    def custom_field(self, name: str) -> dict[str, Any] | None:
        """The definition of circuit field ``name`` (``X__c``), refreshing a stale or missing list once."""
        wanted = self.settings.custom_fields.get(name) or next(
            (v for k, v in self.settings.custom_fields.items() if k.lower() == name.lower()), None
        )
        key = (wanted or f"contact.{name[:-3]}").lower()
        with self._lock:
            fresh = time.monotonic() - self._custom_at < self.settings.custom_field_ttl_s
            if key not in self._custom or not fresh:  # a field created since the last load is found too
                self._load_custom_fields()
            return self._custom.get(key)

    def custom_field_name(self, definition: Mapping[str, Any]) -> str:
        """The circuit name of a custom field: the configured one, else ``{key}__c``."""
        for name, target in self.settings.custom_fields.items():
            if target.lower() in (str(definition.get("fieldKey", "")).lower(), str(definition.get("id", "")).lower()):
                return name
        return custom_field_circuit_name(str(definition.get("fieldKey") or definition.get("id")))

    def custom_fields(self) -> list[dict[str, Any]]:
        with self._lock:
            if time.monotonic() - self._custom_at >= self.settings.custom_field_ttl_s:
                self._load_custom_fields()
            return list({id(d): d for d in self._custom.values()}.values())

    def _load_custom_fields(self) -> None:
        body = self.request("GET", f"/locations/{self.settings.location_id}/customFields")
        table: dict[str, dict[str, Any]] = {}
        for definition in body.get("customFields") or []:
            for key in (definition.get("fieldKey"), definition.get("id")):
                if isinstance(key, str):
                    table[key.lower()] = definition
        self._custom = table
        self._custom_at = time.monotonic()

    # --- reads -------------------------------------------------------------------------

    def contact(self, contact_id: str) -> dict[str, Any] | None:
        try:
            body = self.request("GET", f"/contacts/{contact_id}")
        except CrmRequestError as exc:
            if exc.status in (400, 404, 422):
                return None
            raise
        contact = body.get("contact") if isinstance(body, dict) else None
        return contact if isinstance(contact, dict) else None

    def contacts_by_email(self, email: str, limit: int) -> list[dict[str, Any]]:
        body = self.request(
            "POST",
            "/contacts/search",
            json_body={
                "locationId": self.settings.location_id,
                "pageLimit": max(1, min(limit, 100)),
                "filters": [{"field": "email", "operator": "eq", "value": email}],
            },
        )
        return [c for c in body.get("contacts") or [] if isinstance(c, dict)]

    def tasks(self, contact_id: str) -> list[dict[str, Any]]:
        try:
            body = self.request("GET", f"/contacts/{contact_id}/tasks")
        except CrmRequestError as exc:
            if exc.status in (400, 404, 422):
                return []
            raise
        return [{**t, "contactId": t.get("contactId") or contact_id} for t in body.get("tasks") or []]

    # --- record shapes -----------------------------------------------------------------

    def to_record(self, object_name: str, item: Mapping[str, Any], names: Sequence[str] | None) -> dict[str, Any]:
        """A GHL contact or task as a circuit record with ``names`` (all mapped fields if None)."""
        _, fields = object_fields(object_name, QueryError)
        values: dict[str, Any] = {}
        for name, prop in fields.items():
            values[name.lower()] = value_from_ghl(name, item.get(prop))
        if object_name.lower() == "contact":
            by_id = {str(c.get("id")): c.get("value") for c in item.get("customFields") or [] if isinstance(c, dict)}
            definitions = self.custom_fields() if names is None else []
            for d in definitions:
                values[self.custom_field_name(d).lower()] = value_from_ghl("", by_id.get(str(d.get("id"))))
            for name in names or []:
                if name.lower().endswith("__c"):
                    found = self.custom_field(name)
                    values[name.lower()] = value_from_ghl("", by_id.get(str(found.get("id")))) if found else None
        if names is None:
            canonical = {n.lower(): n for n in fields}
            return {canonical.get(k, k): v for k, v in values.items()}
        return {name: values.get(name.lower()) for name in names}

    def to_ghl(self, object_name: str, index: int, row: Mapping[str, Scalar]) -> dict[str, Any]:
        """A circuit row as a GHL body (without ``id``); unknown fields are a ``DmlError``."""
        _, fields = object_fields(object_name, DmlError)
        body: dict[str, Any] = {}
        custom: list[dict[str, Any]] = []
        for name, value in row.items():
            canonical = field_name(fields, name)
            if canonical is not None:
                if canonical.lower() in READ_ONLY:
                    continue
                body[fields[canonical]] = value_to_ghl(canonical, value)
            elif object_name.lower() == "task" and name.lower() in UNSTORED_TASK_FIELDS:
                continue
            elif name.lower().endswith("__c") and object_name.lower() == "contact":
                definition = self.custom_field(name)
                if definition is None:
                    raise DmlError(f"row {index}: field {name}: no such custom field in the GoHighLevel location")
                custom.append({"id": definition["id"], "field_value": value})
            else:
                known = ", ".join(k for k in fields if k.lower() not in READ_ONLY)
                raise DmlError(f"row {index}: field {name}: not mapped to GoHighLevel {object_name} (known: {known})")
        if custom:
            body["customFields"] = custom
        return body

    # --- outbox ------------------------------------------------------------------------

    def deliver(self, delivery: Delivery) -> None:
        entry = delivery.entry
        obj, _ = object_fields(entry.object_name, DmlError)
        for index, row, provisional in delivery.pending_rows():
            row = delivery.resolve_row(row)
            record_id = row.get("Id")
            try:
                body = self.to_ghl(obj, index, {k: v for k, v in row.items() if k not in ("Id", "WhoId")})
            except DmlError as exc:
                raise DeliveryFailed(str(exc)) from None
            created: dict[str, str] = {}
            if entry.operation == "create" and provisional and index == entry.done and entry.attempts > 1:
                # An earlier attempt may have created this row before its answer was lost (a 5xx
                # after applying, a crash): adopt an identical record it left instead of sending again.
                found = self._created_earlier(obj, row, body, delivery)
                if found is not None:
                    delivery.advance(1, {provisional: found})
                    continue
            if obj == "Contact":
                created = self._deliver_contact(entry.operation, record_id, body, provisional)
            else:
                contact = row.get("WhoId")
                if not isinstance(contact, str):
                    raise DeliveryFailed(f"row {index}: field WhoId: a GoHighLevel Task needs its contact")
                created = self._deliver_task(entry.operation, contact, record_id, body, provisional)
            delivery.advance(1, created)

    def _created_earlier(
        self, obj: str, row: Mapping[str, Any], body: Mapping[str, Any], delivery: Delivery
    ) -> str | None:
        """The id of a record equal to ``body`` that no other outbox entry created: a Task under its
        contact with the same title, body and due date, or a Contact with the same email. GHL has
        no idempotency key, so a resend is matched by content."""
        if obj == "Task":
            contact = row.get("WhoId")
            candidates = self.tasks(contact) if isinstance(contact, str) else []
            same = ("title", "body", "dueDate")
        else:
            email = body.get("email")
            candidates = self.contacts_by_email(email, 100) if isinstance(email, str) and email else []
            same = ("email", "firstName", "lastName")
        matching = [str(c.get("id")) for c in candidates if all(c.get(k) == body.get(k) for k in same)]
        claimed = delivery.claimed_ids(matching)
        return next((m for m in matching if m not in claimed), None)

    def _send(self, method: str, path: str, body: Any = None, *, missing_ok: bool = False) -> Any:
        try:
            return self.request(method, path, json_body=body)
        except CrmRequestError as exc:
            if missing_ok and exc.status == 404:
                return None  # already gone: a resend of a delete
            raise DeliveryFailed(f"GoHighLevel rejected {method} {path}: {shorten(exc.body)}") from None

    def _deliver_contact(
        self, operation: str, record_id: Any, body: dict[str, Any], provisional: str | None
    ) -> dict[str, str]:
        if operation == "create":
            answer = self._send("POST", "/contacts/", {"locationId": self.settings.location_id, **body})
            return {provisional: _new_id(answer, "contact")} if provisional else {}
        if operation == "update":
            self._send("PUT", f"/contacts/{record_id}", body)
        elif operation == "delete":
            self._send("DELETE", f"/contacts/{record_id}", missing_ok=True)
        else:
            raise DeliveryFailed(f"GoHighLevel cannot {operation} a Contact")
        return {}

    def _deliver_task(
        self, operation: str, contact: str, record_id: Any, body: dict[str, Any], provisional: str | None
    ) -> dict[str, str]:
        base = f"/contacts/{contact}/tasks"
        if operation == "create":
            answer = self._send("POST", base, {"completed": False, **body})
            return {provisional: _new_id(answer, "task")} if provisional else {}
        if operation == "update":
            self._send("PUT", f"{base}/{record_id}", body)
        elif operation == "delete":
            self._send("DELETE", f"{base}/{record_id}", missing_ok=True)
        else:
            raise DeliveryFailed(f"GoHighLevel cannot {operation} a Task")
        return {}


def _new_id(answer: Any, kind: str) -> str:
    item = answer.get(kind) if isinstance(answer, dict) else None
    new_id = item.get("id") if isinstance(item, dict) else None
    if not isinstance(new_id, str):
        raise CrmError(f"GoHighLevel answered a create without a {kind} id: {shorten(answer)}")
    return new_id


class GoHighLevelTransaction(OutboxTransaction):
    crm = "gohighlevel"

    def __init__(self, connector: GoHighLevelConnector) -> None:
        super().__init__(connector.outbox, connector.tenant)
        self.connector = connector
        self._task_contacts: dict[str, str] = {}  # task id -> contact id, learned from reads and writes

    # --- reads -------------------------------------------------------------------------

    def query(
        self,
        soql: str,
        binds: Mapping[str, Any],
        max_rows: int,
        timeout_ms: int | None = None,
        max_bytes: int | None = None,
    ) -> QueryResult:
        # max_bytes: a CRM's answer is already bounded by the HTTP connector's response cap, and the
        # caller charges the records it returns.
        if max_rows < 0:
            raise ValueError("max_rows must not be negative")
        q = parse(soql)
        obj, fields = object_fields(q.object_name, QueryError)
        if q.order_by:
            raise QueryError(f"GoHighLevel: ORDER BY is not supported (supported: {_SUPPORTED})")
        names = [self._select_name(obj, fields, f) for f in q.fields]
        kind, values = self._where(obj, q, binds)
        items = self._items(obj, kind, values, max_rows + 1)
        offset = bind_count(binds, q.offset) if q.offset is not None else 0
        limit = bind_count(binds, q.limit) if q.limit is not None else None
        items = items[offset:]
        items = items[:limit] if limit is not None else items
        if q.count:
            return QueryResult([], len(items))
        items = items[: max_rows + 1]
        records = []
        for item in items:
            record = self.connector.to_record(obj, item, names)
            if not any(n.lower() == "id" for n in names):
                record = {"Id": item.get("id"), **record}
            records.append(record)
        return QueryResult(records, len(records))

    def _select_name(self, obj: str, fields: Mapping[str, str], f: Field) -> str:
        if len(f.path) > 1:
            raise QueryError(f"{f.pos}: GoHighLevel: parent field {f.name} is not supported")
        if field_name(fields, f.name) is None:
            if obj == "Contact" and f.name.lower().endswith("__c"):
                if self.connector.custom_field(f.name) is None:
                    raise QueryError(f"{f.pos}: GoHighLevel: no custom field {f.name} in the location")
            else:
                raise QueryError(f"{f.pos}: GoHighLevel: {obj} has no field {f.name}")
        return f.name

    def _where(self, obj: str, q: Query, binds: Mapping[str, Any]) -> tuple[str, list[Scalar]]:
        c: Condition | None = q.where
        allowed = {"Contact": ("id", "email"), "Task": ("whoid",)}[obj]
        key: str | None = None
        values: list[Scalar] = []
        if (
            isinstance(c, Comparison)
            and c.op == "="
            and len(c.field.path) == 1
            and isinstance(c.value, Bind | Constant)
        ):
            key = c.field.name.lower()
            values = [bind_scalar(binds, c.value) if isinstance(c.value, Bind) else c.value.value]
        elif isinstance(c, In) and not c.negated and len(c.field.path) == 1 and c.field.name.lower() != "email":
            key = c.field.name.lower()
            if isinstance(c.values, Bind):
                values = bind_list(binds, c.values)
            else:
                values = [v.value for v in c.values if isinstance(v, Constant)]
        if key is None or key not in allowed:
            what = "no WHERE clause" if c is None else f"WHERE on {_describe(c)}"
            raise QueryError(f"GoHighLevel cannot answer {obj} queries with {what} (supported: {_SUPPORTED})")
        return key, values

    def _items(self, obj: str, kind: str, values: list[Scalar], cap: int) -> list[dict[str, Any]]:
        strings = list(dict.fromkeys(v for v in values if isinstance(v, str) and v))
        mapped = self.real_ids(strings)
        items: list[dict[str, Any]] = []
        for value in strings:
            if len(items) >= cap:
                break
            value = mapped.get(value, value)
            if is_provisional(value) or (kind != "email" and not value.isalnum()):
                continue  # not in the CRM yet, or not an id at all
            if kind == "email":
                items.extend(self.connector.contacts_by_email(value, cap))
            elif kind == "id":
                contact = self.connector.contact(value)
                if contact is not None:
                    items.append(contact)
            else:
                for task in self.connector.tasks(value):
                    self._task_contacts[str(task.get("id"))] = value
                    items.append(task)
        return items

    def fetch(self, object_name: str, ids: Sequence[str]) -> list[dict[str, Any]]:
        obj, _ = object_fields(check_object(object_name), QueryError)
        mapped = self.real_ids(list(ids))
        fetched: dict[str, dict[str, Any]] = {}
        contacts_seen: dict[str, list[dict[str, Any]]] = {}
        for asked in ids:
            real = mapped.get(asked, asked)
            if is_provisional(real) or not real.isalnum():
                continue
            if obj == "Contact":
                item = self.connector.contact(real)
            else:
                contact = self._task_contacts.get(real) or self._task_contacts.get(asked)
                if contact is None:
                    continue  # GHL cannot find a task without its contact
                contact = mapped.get(contact, contact)
                tasks = contacts_seen.setdefault(contact, self.connector.tasks(contact))
                item = next((t for t in tasks if t.get("id") == real), None)
            if item is not None:
                fetched[asked] = self.connector.to_record(obj, item, None)
        return self.overlay(ids, fetched)

    # --- writes ------------------------------------------------------------------------

    def dml(
        self,
        op: DmlOp,
        object_name: str,
        rows: Sequence[Mapping[str, Any]],
        external_id: str = "Id",
        timeout_ms: int | None = None,
    ) -> DmlResult:
        # timeout_ms: nothing is sent here; DML is queued in the outbox and sent after commit.
        op = DmlOp(op)
        obj, _ = object_fields(check_object(object_name), DmlError)
        checked = [check_row(i, row) for i, row in enumerate(rows)]
        if external_id.lower() != "id":
            raise DmlError(f"GoHighLevel: upsert by {external_id} is not supported (only by Id)")
        if op is DmlOp.UNDELETE:
            raise DmlError("GoHighLevel has no recycle bin: undelete is not supported")
        for index, row in enumerate(checked):  # every field must map; checked now, not after commit
            self.connector.to_ghl(obj, index, {k: v for k, v in row.items() if k not in ("Id", "WhoId")})
        if op is DmlOp.INSERT:
            for index, row in enumerate(checked):
                if "Id" in row:
                    raise DmlError(f"row {index}: field Id: must not be set on insert (use update or upsert)")
            return self._insert(obj, checked)
        if op is DmlOp.UPSERT:
            inserts = [row for row in checked if row.get("Id") is None]
            updates = [row for row in checked if row.get("Id") is not None]
            self.required_ids(updates, "update")
            new = iter(self._insert(obj, inserts).ids if inserts else [])
            if updates:
                self.queue("update", obj, [self._with_contact(obj, i, r) for i, r in enumerate(updates)])
            ids = [str(row["Id"]) if row.get("Id") is not None else next(new) for row in checked]
            return DmlResult(ids, [row.get("Id") is None for row in checked])
        ids = self.required_ids(checked, op.name.lower())
        if op is DmlOp.DELETE:
            self.queue("delete", obj, [self._with_contact(obj, i, {"Id": r}) for i, r in enumerate(ids)])
        elif checked:
            self.queue("update", obj, [self._with_contact(obj, i, r) for i, r in enumerate(checked)])
        return DmlResult(ids, [False] * len(ids))

    def _insert(self, obj: str, rows: list[dict[str, Scalar]]) -> DmlResult:
        if obj == "Task":
            for index, row in enumerate(rows):
                who = next((v for k, v in row.items() if k.lower() == "whoid"), None)
                if not isinstance(who, str):
                    raise DmlError(f"row {index}: field WhoId: required: a GoHighLevel Task belongs to a contact")
        ids = self.new_ids(obj, len(rows))
        if obj == "Task":
            for new_id, row in zip(ids, rows, strict=True):
                self._task_contacts[new_id] = str(next(v for k, v in row.items() if k.lower() == "whoid"))
        if rows:
            self.queue("create", obj, rows, ids)
        return DmlResult(ids, [True] * len(ids))

    def _with_contact(self, obj: str, index: int, row: dict[str, Scalar]) -> dict[str, Scalar]:
        """A Task row completed with its WhoId: GHL addresses tasks under their contact."""
        if obj != "Task":
            return row
        who = next((v for k, v in row.items() if k.lower() == "whoid"), None)
        if who is None:
            who = self._task_contacts.get(str(row["Id"]))
        if not isinstance(who, str):
            raise DmlError(
                f"row {index}: field WhoId: required to change a GoHighLevel Task (tasks live under a contact)"
            )
        return {**{k: v for k, v in row.items() if k.lower() != "whoid"}, "WhoId": who}


def _describe(c: Condition) -> str:
    if isinstance(c, Comparison):
        return f"{c.field.name} {c.op}"
    if isinstance(c, In):
        return f"{c.field.name} {'NOT IN' if c.negated else 'IN'}"
    return type(c).__name__.upper()
