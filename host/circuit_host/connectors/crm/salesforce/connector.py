"""Salesforce as the system of record: SOQL passthrough for reads, the outbox and sObject Collections for writes.

Queries are parsed with the host's SOQL parser first (so a guest gets the same positioned
errors as on CircuitDB), their bind variables are substituted as escaped SOQL literals,
and the text goes to ``/query``; ``nextRecordsUrl`` is followed until ``max_rows + 1``
records are in. DML is checked, given ids (provisional for inserts) and queued; after
commit the dispatcher sends it in chunks of 200 through ``/composite/sobjects``.
"""

from __future__ import annotations

import re
import threading
from collections.abc import Iterator, Mapping, Sequence
from decimal import Decimal
from typing import Any

import httpx

from ....errors import DmlError, QueryError
from ....soql.parser import (
    IDENTIFIER,
    And,
    Bind,
    Comparison,
    Condition,
    Field,
    In,
    Includes,
    Like,
    Not,
    Or,
    Query,
    Scalar,
    bind_count,
    bind_list,
    bind_scalar,
    error_at,
    parse,
)
from ...records import DmlOp, DmlResult, QueryResult
from ..api import ApiClient, CrmAuthError, CrmError, CrmRequestError, CrmUnavailable, shorten
from ..base import OutboxTransaction, check_object, check_row, shown
from ..outbox import Delivery, DeliveryFailed, Outbox
from ..provisional import is_provisional
from .configuration import SalesforceSettings

CHUNK = 200
"""sObject Collections take at most 200 records per request."""
_RETRYABLE_CODES = frozenset({"UNABLE_TO_LOCK_ROW", "REQUEST_RUNNING_TOO_LONG", "SERVER_UNAVAILABLE"})
_GONE_CODES = frozenset({"ENTITY_IS_DELETED"})
_SF_DATETIME = re.compile(r"(\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3})\+0000")
_SOQL_ESCAPES = {"\\": "\\\\", "'": "\\'", '"': '\\"', "\n": "\\n", "\r": "\\r", "\t": "\\t", "\b": "\\b", "\f": "\\f"}
_SELECT = re.compile(r"\s*SELECT\b", re.IGNORECASE)
_SALESFORCE_ID = re.compile(r"[0-9A-Za-z]{15}(?:[0-9A-Za-z]{3})?")


# --- SOQL text ---------------------------------------------------------------------------


def soql_literal(value: Scalar) -> str:
    """A scalar as SOQL source text. Strings are quoted with every quote, backslash and
    control character escaped, so no value can end the literal early."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        return format(Decimal(repr(value)), "f")
    if isinstance(value, str):
        if any(ord(c) < 32 and c not in "\n\r\t\b\f" for c in value):
            raise QueryError("a string bind may not contain control characters")
        return "'" + "".join(_SOQL_ESCAPES.get(c, c) for c in value) + "'"
    raise QueryError(f"unsupported bind value {shown(value)}")


def _binds_in(query: Query) -> Iterator[tuple[Bind, str]]:
    """Every bind in the query with how it is used: ``scalar``, ``list`` or ``count``."""

    def walk(c: Condition) -> Iterator[tuple[Bind, str]]:
        if isinstance(c, Comparison) and isinstance(c.value, Bind):
            yield c.value, "scalar"
        elif isinstance(c, Like) and isinstance(c.pattern, Bind):
            yield c.pattern, "scalar"
        elif isinstance(c, In | Includes) and isinstance(c.values, Bind):
            yield c.values, "list"
        elif isinstance(c, Not):
            yield from walk(c.operand)
        elif isinstance(c, And | Or):
            for operand in c.operands:
                yield from walk(operand)

    if query.where is not None:
        yield from walk(query.where)
    for count in (query.limit, query.offset):
        if isinstance(count, Bind):
            yield count, "count"


def _empty_in(query: Query, binds: Mapping[str, Any]) -> bool:
    """``WHERE ... AND x IN :empty``: no record can match, and SOQL has no ``IN ()``."""
    where = query.where
    conjuncts = where.operands if isinstance(where, And) else (where,) if where is not None else ()
    return any(
        isinstance(c, In) and not c.negated and isinstance(c.values, Bind) and bind_list(binds, c.values) == []
        for c in conjuncts
    )


def bind_soql(soql: str, query: Query, binds: Mapping[str, Any], ids: Mapping[str, str] | None = None) -> str:
    """``soql`` with each ``:name`` replaced by its value as a literal; ``ids`` rewrites provisional ids."""
    ids = ids or {}
    line_starts = [0] + [m.end() for m in re.finditer("\n", soql)]
    replacements: list[tuple[int, int, str]] = []
    for bind, usage in _binds_in(query):
        if usage == "count":
            text = str(bind_count(binds, bind))
        elif usage == "list":
            values = bind_list(binds, bind)
            if not values:
                raise error_at(bind.pos, f"bind variable :{bind.name} is an empty list; SOQL has no IN ()")
            text = "(" + ", ".join(soql_literal(_id(v, ids)) for v in values) + ")"
        else:
            text = soql_literal(_id(bind_scalar(binds, bind), ids))
        start = line_starts[bind.pos.line - 1] + bind.pos.column - 1
        end = start + 1 + len(bind.name)
        if soql[start:end] != ":" + bind.name:  # the parser's positions are the contract; check it
            raise QueryError(f"internal error locating bind :{bind.name}")
        replacements.append((start, end, text))
    for start, end, text in sorted(replacements, reverse=True):
        soql = soql[:start] + text + soql[end:]
    return soql


def _id(value: Scalar, ids: Mapping[str, str]) -> Scalar:
    return ids.get(value, value) if isinstance(value, str) else value


def _scalar(value: Any) -> Any:
    """A Salesforce JSON value as an ABI scalar: ``+0000`` datetimes become ``Z``, compound values nil."""
    if isinstance(value, str):
        m = _SF_DATETIME.fullmatch(value)
        return m.group(1) + "Z" if m else value
    if isinstance(value, dict | list):
        return None
    return value


def _lookup(record: Mapping[str, Any], path: tuple[str, ...]) -> Any:
    current: Any = record
    for part in path:
        if not isinstance(current, Mapping):
            return None
        key = next((k for k in current if k.lower() == part.lower() and k != "attributes"), None)
        current = current.get(key) if key is not None else None
    return _scalar(current)


def _project(fields: tuple[Field, ...], record: Mapping[str, Any]) -> dict[str, Any]:
    projected: dict[str, Any] = {}
    if not any(f.name.lower() == "id" for f in fields):
        projected["Id"] = _lookup(record, ("Id",))
    for f in fields:
        projected[f.name] = _lookup(record, f.path)
    return projected


def _codes(result: Mapping[str, Any]) -> set[str]:
    return {str(e.get("statusCode")) for e in result.get("errors") or []}


def _errors(result: Mapping[str, Any]) -> str:
    def one(e: Mapping[str, Any]) -> str:
        fields = f" (fields {', '.join(e['fields'])})" if e.get("fields") else ""
        return f"{e.get('statusCode')}: {e.get('message')}{fields}"

    return "; ".join(one(e) for e in result.get("errors") or [])


# --- connector ---------------------------------------------------------------------------


class SalesforceConnector:
    """A ``RecordsConnector`` for one Salesforce org, and the outbox sender for its tenant."""

    crm = "salesforce"

    def __init__(
        self,
        settings: SalesforceSettings,
        outbox: Outbox,
        tenant: str,
        *,
        transport: httpx.BaseTransport | None = None,
    ) -> None:
        self.settings = settings
        self.outbox = outbox
        self.tenant = tenant
        self.api = ApiClient("Salesforce", settings.base_url, settings.timeout_s, transport)
        self.data_path = f"/services/data/v{settings.api_version}"
        self._token: str | None = settings.access_token.get_secret_value() if settings.access_token else None
        self._token_lock = threading.Lock()
        self._describes: dict[str, list[str]] = {}
        self._closed = False

    def begin(self) -> SalesforceTransaction:
        if self._closed:
            raise RuntimeError("Salesforce connector is closed")
        return SalesforceTransaction(self)

    def close(self) -> None:
        if not self._closed:
            self._closed = True
            self.api.close()

    # --- HTTP --------------------------------------------------------------------------

    def _access_token(self, stale: str | None = None) -> str:
        with self._token_lock:
            if self._token is None or (stale is not None and self._token == stale and self._can_refresh()):
                self._token = self._fetch_token()
            return self._token

    def _can_refresh(self) -> bool:
        return self.settings.client_id is not None and self.settings.client_secret is not None

    def _fetch_token(self) -> str:
        s = self.settings
        if s.client_id is None or s.client_secret is None:
            raise CrmAuthError("Salesforce: the access token was refused and no client credentials are configured")
        try:
            response = self.api.request(
                "POST",
                s.oauth_token_url,
                headers={},
                form={
                    "grant_type": "client_credentials",
                    "client_id": s.client_id,
                    "client_secret": s.client_secret.get_secret_value(),
                },
            )
        except CrmRequestError as exc:  # 400 invalid_client and friends
            raise CrmAuthError(f"Salesforce: the client credentials were refused: {shorten(exc.body)}") from None
        token = response.json().get("access_token")
        if not isinstance(token, str) or not token:
            raise CrmAuthError("Salesforce: the token endpoint returned no access_token")
        return token

    def request(self, method: str, path: str, **kwargs: Any) -> Any:
        """One authenticated request; with client credentials, a refused token is renewed once."""
        token = self._access_token()
        for attempt in (1, 2):
            try:
                response = self.api.request(method, path, headers={"authorization": f"Bearer {token}"}, **kwargs)
            except CrmAuthError:
                if attempt == 2 or not self._can_refresh():
                    raise
                token = self._access_token(stale=token)
                continue
            return response.json() if response.content else None
        raise AssertionError("unreachable")

    def check_connection(self) -> None:
        """One cheap authenticated read (the org's limits); ``CrmError`` if it fails."""
        self.request("GET", f"{self.data_path}/limits")

    def query_all(self, soql: str, limit: int, *, deleted: bool = False) -> tuple[list[dict[str, Any]], int]:
        """Records of ``soql`` (at most ``limit``, following ``nextRecordsUrl``) and ``totalSize``."""
        path = f"{self.data_path}/{'queryAll' if deleted else 'query'}"
        page = self.request("GET", path, params={"q": soql})
        records: list[dict[str, Any]] = []
        total = 0
        while page is not None:
            total = int(page.get("totalSize", 0))
            records.extend(page.get("records") or [])
            next_url = page.get("nextRecordsUrl")
            if len(records) >= limit or page.get("done", True) or not next_url:
                break
            if not isinstance(next_url, str) or not next_url.startswith(path + "/"):
                raise CrmError(f"Salesforce: unexpected nextRecordsUrl {shown(next_url)}")
            page = self.request("GET", next_url)
        return records[:limit], total

    def describe(self, object_name: str) -> list[str]:
        """The object's field names (cached for the connector's lifetime)."""
        key = object_name.lower()
        if key not in self._describes:
            try:
                body = self.request("GET", f"{self.data_path}/sobjects/{object_name}/describe")
            except CrmRequestError as exc:
                raise QueryError(f"Salesforce: unknown object {object_name}: {shorten(exc.body)}") from None
            self._describes[key] = [f["name"] for f in body.get("fields", []) if isinstance(f.get("name"), str)]
        return self._describes[key]

    # --- outbox ------------------------------------------------------------------------

    def deliver(self, delivery: Delivery) -> None:
        entry = delivery.entry
        pending = delivery.pending_rows()
        for start in range(0, len(pending), CHUNK):
            chunk = pending[start : start + CHUNK]
            if entry.operation == "delete":
                self._delete(delivery, chunk)
            elif entry.operation == "undelete":
                raise DeliveryFailed("Salesforce has no REST undelete")
            else:
                self._save(delivery, chunk)

    def _save(self, delivery: Delivery, chunk: list[tuple[int, dict[str, Any], str | None]]) -> None:
        entry = delivery.entry
        obj = entry.object_name
        key = entry.external_id
        if entry.operation == "create" and self.settings.idempotency_field:
            key = self.settings.idempotency_field
        records = []
        for _, row, provisional in chunk:
            body = delivery.resolve_row(row)
            if entry.operation == "create" and key is not None:
                body[key] = provisional
            if entry.operation == "upsert" or (entry.operation == "create" and key is not None):
                body.pop("Id", None)
            records.append({"attributes": {"type": obj}, **body})
        payload = {"allOrNone": True, "records": records}
        path = f"{self.data_path}/composite/sobjects"
        try:
            if entry.operation == "update":
                results = self.request("PATCH", path, json_body=payload)
            elif key is not None:
                results = self.request("PATCH", f"{path}/{obj}/{key}", json_body=payload)
            else:
                results = self.request("POST", path, json_body=payload)
        except CrmRequestError as exc:
            raise DeliveryFailed(f"Salesforce rejected entry {entry.id}: {shorten(exc.body)}") from None
        created = self._check(entry.id, chunk, results)
        delivery.advance(len(chunk), {p: r for p, r in created.items()})

    def _check(
        self, entry_id: int, chunk: list[tuple[int, dict[str, Any], str | None]], results: Any
    ) -> dict[str, str]:
        if not isinstance(results, list) or len(results) != len(chunk):
            raise DeliveryFailed(f"Salesforce answered entry {entry_id} with {shorten(results)}")
        failures: list[str] = []
        retry = False
        created: dict[str, str] = {}
        for (index, _, provisional), result in zip(chunk, results, strict=True):
            if result.get("success"):
                if provisional is not None and isinstance(result.get("id"), str):
                    created[provisional] = result["id"]
                continue
            codes = _codes(result)
            if codes <= {"ALL_OR_NONE_OPERATION_ROLLED_BACK"}:
                continue
            retry = retry or bool(codes & _RETRYABLE_CODES)
            failures.append(f"row {index}: {_errors(result)}")
        if failures:
            message = "; ".join(failures)
            if retry:
                raise CrmUnavailable(f"Salesforce: {message}")
            raise DeliveryFailed(message)
        return created

    def _delete(self, delivery: Delivery, chunk: list[tuple[int, dict[str, Any], str | None]]) -> None:
        ids = delivery.resolve([row["Id"] for _, row, _ in chunk])
        try:
            results = self.request(
                "DELETE", f"{self.data_path}/composite/sobjects", params={"ids": ",".join(ids), "allOrNone": "false"}
            )
        except CrmRequestError as exc:
            raise DeliveryFailed(f"Salesforce rejected entry {delivery.entry.id}: {shorten(exc.body)}") from None
        if not isinstance(results, list) or len(results) != len(chunk):
            raise DeliveryFailed(f"Salesforce answered entry {delivery.entry.id} with {shorten(results)}")
        # A record already deleted (say, by our own resend after a crash) counts as done.
        failures = [
            f"row {index}: {_errors(result)}"
            for (index, _, _), result in zip(chunk, results, strict=True)
            if not result.get("success") and not _codes(result) <= _GONE_CODES
        ]
        if failures:
            raise DeliveryFailed("; ".join(failures))
        delivery.advance(len(chunk))


class SalesforceTransaction(OutboxTransaction):
    crm = "salesforce"

    def __init__(self, connector: SalesforceConnector) -> None:
        super().__init__(connector.outbox, connector.tenant)
        self.connector = connector
        self._upserted: dict[tuple[str, str, Scalar], str] = {}

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
        parsed = parse(soql)
        if _empty_in(parsed, binds):
            return QueryResult([], 0)
        values: list[object] = []
        for bind, usage in _binds_in(parsed):
            if usage == "list":
                values.extend(bind_list(binds, bind))
            elif usage == "scalar":
                values.append(bind_scalar(binds, bind))
        text = bind_soql(soql, parsed, binds, self.real_ids(values))
        if not parsed.count and not any(f.name.lower() == "id" for f in parsed.fields):
            m = _SELECT.match(text)
            assert m is not None  # the parser accepted it, so it starts with SELECT
            text = text[: m.end()] + " Id," + text[m.end() :]
        try:
            records, total = self.connector.query_all(text, max_rows + 1)
        except CrmRequestError as exc:
            raise QueryError(f"Salesforce: {_api_errors(exc.body)}") from None
        if parsed.count:
            return QueryResult([], total)
        return QueryResult([_project(parsed.fields, r) for r in records], len(records))

    def fetch(self, object_name: str, ids: Sequence[str]) -> list[dict[str, Any]]:
        mapped = self.real_ids(list(ids))
        asked = [mapped.get(i, i) for i in ids]
        wanted = [i for i in dict.fromkeys(asked) if _SALESFORCE_ID.fullmatch(i) and not is_provisional(i)]
        fetched: dict[str, dict[str, Any]] = {}
        if wanted:
            names = self.connector.describe(check_object(object_name))
            for start in range(0, len(wanted), CHUNK):
                chunk = wanted[start : start + CHUNK]
                soql = (
                    f"SELECT {', '.join(names)} FROM {object_name} "
                    f"WHERE Id IN ({', '.join(soql_literal(i) for i in chunk)})"
                )
                try:
                    records, _ = self.connector.query_all(soql, len(chunk), deleted=True)
                except CrmRequestError as exc:
                    raise CrmError(f"Salesforce: fetch failed: {_api_errors(exc.body)}") from None
                for r in records:
                    fetched[str(r.get("Id"))[:15]] = {k: _scalar(v) for k, v in r.items() if k != "attributes"}
        by_asked = {i: fetched[mapped.get(i, i)[:15]] for i in ids if mapped.get(i, i)[:15] in fetched}
        return self.overlay(ids, by_asked)

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
        object_name = check_object(object_name)
        checked = [check_row(i, row) for i, row in enumerate(rows)]
        if external_id != "Id" and op is not DmlOp.UPSERT:
            raise DmlError("external_id is allowed only with upsert")
        if op is DmlOp.INSERT:
            for index, row in enumerate(checked):
                if "Id" in row:
                    raise DmlError(f"row {index}: field Id: must not be set on insert (use update or upsert)")
            ids = self.new_ids(object_name, len(checked))
            if checked:
                self.queue("create", object_name, checked, ids)
            return DmlResult(ids, [True] * len(ids))
        if op is DmlOp.UPSERT:
            return self._upsert(object_name, checked, external_id)
        ids = self.required_ids(checked, op.name.lower())
        for index, record_id in enumerate(ids):
            if not _SALESFORCE_ID.fullmatch(record_id):
                raise DmlError(f"row {index}: field Id: {shown(record_id)} is not a Salesforce Id")
        if op is DmlOp.UNDELETE:
            raise DmlError("undelete is not supported on Salesforce (its REST API has no undelete)")
        if op is DmlOp.DELETE:
            self.queue("delete", object_name, [{"Id": i} for i in ids])
        elif checked:
            self.queue("update", object_name, checked)
        return DmlResult(ids, [False] * len(ids))

    def _upsert(self, object_name: str, rows: list[dict[str, Scalar]], external_id: str) -> DmlResult:
        if not isinstance(external_id, str) or not IDENTIFIER.fullmatch(external_id):
            raise DmlError(f"external_id: invalid field name {shown(external_id)}")
        if external_id.lower() == "id":
            return self._upsert_by_id(object_name, rows)
        keys: list[Scalar] = []
        seen: dict[tuple[str, Scalar], int] = {}
        for index, row in enumerate(rows):
            name = next((k for k in row if k.lower() == external_id.lower()), None)
            value = row.get(name) if name else None
            if value is None or isinstance(value, bool):
                raise DmlError(f"row {index}: field {external_id}: upsert key must have a value")
            if "Id" in row:
                raise DmlError(f"row {index}: field Id: must not be set when upserting by {external_id}")
            norm = (type(value).__name__, value.lower() if isinstance(value, str) else value)
            if norm in seen:
                raise DmlError(f"row {index}: field {external_id}: duplicate upsert key, also in row {seen[norm]}")
            seen[norm] = index
            keys.append(value)
        existing = self._match(object_name, external_id, keys)
        ids: list[str] = []
        provisional: list[str | None] = []
        created: list[bool] = []
        for key in keys:
            norm_key = (object_name.lower(), external_id.lower(), key.lower() if isinstance(key, str) else key)
            found = existing.get(norm_key) or self._upserted.get(norm_key)
            if found is None:
                found = self.new_ids(object_name, 1)[0]
                self._upserted[norm_key] = found
                provisional.append(found)
                created.append(True)
            else:
                provisional.append(None)
                created.append(False)
            ids.append(found)
        if rows:
            self.queue("upsert", object_name, rows, provisional, external_id, ids=ids)
        return DmlResult(ids, created)

    def _match(self, object_name: str, external_id: str, keys: list[Scalar]) -> dict[tuple[str, str, Scalar], str]:
        found: dict[tuple[str, str, Scalar], str] = {}
        for start in range(0, len(keys), CHUNK):
            chunk = keys[start : start + CHUNK]
            soql = (
                f"SELECT Id, {external_id} FROM {object_name} "
                f"WHERE {external_id} IN ({', '.join(soql_literal(k) for k in chunk)})"
            )
            try:
                records, _ = self.connector.query_all(soql, len(chunk) * 2 + 1)
            except CrmRequestError as exc:
                raise DmlError(f"upsert on {object_name} by {external_id}: {_api_errors(exc.body)}") from None
            for r in records:
                value = _lookup(r, (external_id,))
                norm = (object_name.lower(), external_id.lower(), value.lower() if isinstance(value, str) else value)
                found[norm] = str(r["Id"])
        return found

    def _upsert_by_id(self, object_name: str, rows: list[dict[str, Scalar]]) -> DmlResult:
        ids: list[str] = []
        created: list[bool] = []
        updates: list[dict[str, Scalar]] = []
        inserts: list[dict[str, Scalar]] = []
        for index, row in enumerate(rows):
            record_id = row.get("Id")
            if record_id is None:
                inserts.append(row)
                ids.append("")
                created.append(True)
                continue
            if not isinstance(record_id, str) or not _SALESFORCE_ID.fullmatch(record_id):
                raise DmlError(f"row {index}: field Id: {shown(record_id)} is not a Salesforce Id")
            if record_id in ids:
                raise DmlError(f"row {index}: field Id: duplicate of row {ids.index(record_id)}")
            updates.append(row)
            ids.append(record_id)
            created.append(False)
        new_ids = iter(self.new_ids(object_name, len(inserts)))
        ids = [i or next(new_ids) for i in ids]
        if updates:
            self.queue("update", object_name, updates)
        if inserts:
            self.queue("create", object_name, inserts, [i for i, c in zip(ids, created, strict=True) if c])
        return DmlResult(ids, created)


def _api_errors(body: Any) -> str:
    """Salesforce's ``[{"errorCode", "message"}]`` error body as one line."""
    if isinstance(body, list):
        return "; ".join(f"{e.get('errorCode')}: {e.get('message')}" for e in body if isinstance(e, dict))
    return shorten(body)
