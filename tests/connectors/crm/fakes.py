"""Small fake Salesforce and GoHighLevel servers on loopback: real HTTP, records in memory.

Each validates auth headers, keeps a log of the requests it served, and has switches:
``fail(...)`` answers the next requests with a status, headers and body (5xx, 429 with
``Retry-After``), optionally after applying them (a CRM that saved the records and then lost
the answer); ``slow(seconds)`` delays answers (applied first, answered late); ``revoke()``
refuses the configured token from now on, as a CRM does when an admin revokes it.
"""

from __future__ import annotations

import json
import operator
import re
import threading
import time
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlsplit

from circuit_host.circuitdb.schema import record_id_prefix
from circuit_host.soql import parser as soql

Reply = tuple[int, dict[str, str], Any]


@dataclass
class Failure:
    status: int
    headers: dict[str, str] = field(default_factory=dict)
    body: Any = None
    path: str = ""  # only requests whose path contains this
    method: str = ""
    after_applying: bool = False


@dataclass
class Seen:
    method: str
    path: str
    query: dict[str, str]
    headers: dict[str, str]
    body: Any


class FakeServer:
    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.requests: list[Seen] = []
        self.failures: list[Failure] = []
        self.delay_s = 0.0
        self.delay_path = ""
        self.revoked = False
        fake = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args: object) -> None:
                pass

            def _serve(self) -> None:
                length = int(self.headers.get("content-length") or 0)
                raw = self.rfile.read(length) if length else b""
                url = urlsplit(self.path)
                query = {k: v[0] for k, v in parse_qs(url.query).items()}
                ctype = self.headers.get("content-type", "")
                body: Any = None
                if raw and "json" in ctype:
                    body = json.loads(raw)
                elif raw:
                    body = {k: v[0] for k, v in parse_qs(raw.decode()).items()}
                status, headers, reply = fake.serve(
                    self.command, url.path, query, {k.lower(): v for k, v in self.headers.items()}, body
                )
                if fake.delay_s and fake.delay_path in url.path and self.command != "GET":
                    time.sleep(fake.delay_s)  # the write is applied; its answer comes late (or never)
                data = b"" if reply is None else json.dumps(reply).encode()
                self.send_response(status)
                for k, v in headers.items():
                    self.send_header(k, v)
                self.send_header("content-type", "application/json")
                self.send_header("content-length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            do_GET = do_POST = do_PATCH = do_PUT = do_DELETE = _serve

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}"
        self.thread = threading.Thread(target=self.httpd.serve_forever, args=(0.02,), daemon=True)
        self.thread.start()

    def close(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()

    def fail(self, status: int, times: int = 1, **kwargs: Any) -> None:
        self.failures.extend(Failure(status, **kwargs) for _ in range(times))

    def slow(self, seconds: float, path: str = "") -> None:
        """Answer writes to paths containing ``path`` ``seconds`` late (after applying them); 0 to stop."""
        self.delay_s, self.delay_path = seconds, path

    def revoke(self) -> None:
        """Refuse the configured token from now on (401, with the CRM's own message)."""
        self.revoked = True

    def writes(self, method: str | None = None) -> list[Seen]:
        return [r for r in self.requests if r.method != "GET" and (method is None or r.method == method)]

    def serve(self, method: str, path: str, query: dict[str, str], headers: dict[str, str], body: Any) -> Reply:
        with self.lock:
            denied = self.authorise(path, headers)
            if denied is not None:
                return denied
            self.requests.append(Seen(method, path, query, headers, body))
            failure = next((f for f in self.failures if f.path in path and (not f.method or f.method == method)), None)
            if failure is not None:
                self.failures.remove(failure)
                if failure.after_applying:
                    self.route(method, path, query, body)
                return failure.status, failure.headers, failure.body
            return self.route(method, path, query, body)

    def authorise(self, path: str, headers: dict[str, str]) -> Reply | None:
        raise NotImplementedError

    def route(self, method: str, path: str, query: dict[str, str], body: Any) -> Reply:
        raise NotImplementedError


# --- a SOQL evaluator for the fakes, on the host's own parser -------------------------------


def _get(record: dict[str, Any], name: str) -> Any:
    return next((v for k, v in record.items() if k.lower() == name.lower()), None)


def _value(operand: Any) -> Any:
    assert isinstance(operand, soql.Constant), f"fake CRM expects literals only, got {operand!r}"
    return operand.value


def matches(c: soql.Condition | None, record: dict[str, Any]) -> bool:
    if c is None:
        return True
    if isinstance(c, soql.And):
        return all(matches(o, record) for o in c.operands)
    if isinstance(c, soql.Or):
        return any(matches(o, record) for o in c.operands)
    if isinstance(c, soql.Not):
        return not matches(c.operand, record)
    if isinstance(c, soql.In):
        assert not isinstance(c.values, soql.Bind)
        left = _get(record, c.field.name)
        found = any(_same(left, _value(v)) for v in c.values)  # SOQL compares text ignoring case
        return found != c.negated
    if isinstance(c, soql.Comparison):
        left, right = _get(record, c.field.name), _value(c.value)
        if c.op == "=":
            return _same(left, right)
        if c.op == "!=":
            return not _same(left, right)
        compare = {"<": operator.lt, "<=": operator.le, ">": operator.gt, ">=": operator.ge}[c.op]
        return left is not None and bool(compare(left, right))
    if isinstance(c, soql.Like):
        pattern = re.escape(str(_value(c.pattern))).replace("%", ".*").replace("_", ".")
        return re.fullmatch(pattern, str(_get(record, c.field.name) or ""), re.IGNORECASE) is not None
    raise AssertionError(f"fake CRM cannot evaluate {c!r}")


# --- Salesforce ------------------------------------------------------------------------------


class FakeSalesforce(FakeServer):
    VERSION = "61.0"

    def __init__(self, token: str = "sf-token", page_size: int = 2000) -> None:
        self.token = token
        self.client_id, self.client_secret = "client-id", "client-secret"
        self.page_size = page_size
        self.records: dict[str, dict[str, dict[str, Any]]] = {}
        self.cursors: dict[str, list[dict[str, Any]]] = {}
        self.counter = 0
        self.fail_after_posts: int | None = None  # answer 500 to the POST after this many
        super().__init__()

    @property
    def data(self) -> str:
        return f"/services/data/v{self.VERSION}"

    def add(self, object_name: str, **fields: Any) -> str:
        with self.lock:
            return self._create(object_name, fields)

    def all(self, object_name: str, *, deleted: bool = False) -> list[dict[str, Any]]:
        rows = self.records.get(object_name.lower(), {}).values()
        return [r for r in rows if deleted or not r["IsDeleted"]]

    def _create(self, object_name: str, fields: dict[str, Any]) -> str:
        self.counter += 1
        record_id = f"{record_id_prefix(object_name)}Hs0{self.counter:09d}AAA"
        self.records.setdefault(object_name.lower(), {})[record_id] = {"Id": record_id, "IsDeleted": False, **fields}
        return record_id

    def authorise(self, path: str, headers: dict[str, str]) -> Reply | None:
        if path == "/services/oauth2/token":
            return None
        if self.revoked or headers.get("authorization") != f"Bearer {self.token}":
            return 401, {}, [{"message": "Session expired or invalid", "errorCode": "INVALID_SESSION_ID"}]
        return None

    def route(self, method: str, path: str, query: dict[str, str], body: Any) -> Reply:
        if path == "/services/oauth2/token":
            if body.get("client_id") == self.client_id and body.get("client_secret") == self.client_secret:
                return 200, {}, {"access_token": self.token, "instance_url": self.url, "token_type": "Bearer"}
            return 400, {}, {"error": "invalid_client", "error_description": "invalid client credentials"}
        assert path.startswith(self.data), path
        rest = path[len(self.data) :]
        if rest == "/limits" and method == "GET":
            return 200, {}, {"DailyApiRequests": {"Max": 15000, "Remaining": 14999}}
        if rest in ("/query", "/queryAll"):
            return self._query(query["q"], deleted=rest == "/queryAll")
        if m := re.fullmatch(r"/query(?:All)?/(\w+)-(\d+)", rest):
            return 200, {}, self._page(m.group(1), int(m.group(2)))
        if m := re.fullmatch(r"/sobjects/(\w+)/describe", rest):
            names = {"Id", "IsDeleted"} | {k for r in self.all(m.group(1), deleted=True) for k in r}
            return 200, {}, {"name": m.group(1), "fields": [{"name": n} for n in sorted(names)]}
        if rest == "/composite/sobjects" or rest.startswith("/composite/sobjects/"):
            return self._collection(method, rest, query, body)
        return 404, {}, [{"errorCode": "NOT_FOUND", "message": "The requested resource does not exist"}]

    def _query(self, text: str, *, deleted: bool) -> Reply:
        try:
            q = soql.parse(text)
        except Exception as exc:
            return 400, {}, [{"message": str(exc), "errorCode": "MALFORMED_QUERY"}]
        if q.object_name.lower() not in ("contact", "task", "account", "lead"):
            message = f"sObject type '{q.object_name}' is not supported."
            return 400, {}, [{"message": message, "errorCode": "INVALID_TYPE"}]
        rows = [r for r in self.all(q.object_name, deleted=deleted) if matches(q.where, r)]
        if q.count:
            return 200, {}, {"totalSize": len(rows), "done": True, "records": []}
        records = [
            {"attributes": {"type": q.object_name, "url": f"{self.data}/sobjects/x/{r['Id']}"}}
            | {f.name: _get(r, f.name) for f in q.fields}
            for r in rows
        ]
        if isinstance(q.limit, int):
            records = records[: q.limit]
        locator = f"01g{len(self.cursors)}"
        self.cursors[locator] = records
        return 200, {}, self._page(locator, 0)

    def _page(self, locator: str, start: int) -> dict[str, Any]:
        records = self.cursors[locator]
        page = records[start : start + self.page_size]
        done = start + self.page_size >= len(records)
        reply: dict[str, Any] = {"totalSize": len(records), "done": done, "records": page}
        if not done:
            reply["nextRecordsUrl"] = f"{self.data}/query/{locator}-{start + self.page_size}"
        return reply

    def _collection(self, method: str, rest: str, query: dict[str, str], body: Any) -> Reply:
        if method == "DELETE":
            ids = query["ids"].split(",")
            if len(ids) > 200:
                return 400, {}, [{"errorCode": "EXCEEDED_ID_LIMIT", "message": "cannot submit more than 200"}]
            results = []
            for record_id in ids:
                record = next((t[record_id] for t in self.records.values() if record_id in t), None)
                if record is None or record["IsDeleted"]:
                    code = "ENTITY_IS_DELETED" if record else "INVALID_CROSS_REFERENCE_KEY"
                    results.append(
                        {"id": record_id, "success": False, "errors": [{"statusCode": code, "message": code}]}
                    )
                else:
                    record["IsDeleted"] = True
                    results.append({"id": record_id, "success": True, "errors": []})
            return 200, {}, results
        records = body["records"]
        if method == "POST" and self.fail_after_posts is not None:
            if self.fail_after_posts == 0:
                self.fail_after_posts = None
                return 500, {}, [{"errorCode": "SERVER_ERROR", "message": "lost"}]
            self.fail_after_posts -= 1
        if len(records) > 200:
            return 400, {}, [{"errorCode": "EXCEEDED_ID_LIMIT", "message": "cannot submit more than 200 records"}]
        upsert_key = rest.split("/")[4] if rest.count("/") == 4 else None
        errors = [self._problem(method, r, upsert_key) for r in records]
        if any(errors) and body.get("allOrNone"):
            return (
                200,
                {},
                [
                    {
                        "success": False,
                        "errors": [e or {"statusCode": "ALL_OR_NONE_OPERATION_ROLLED_BACK", "message": ""}],
                    }
                    for e in errors
                ],
            )
        results = []
        for record, error in zip(records, errors, strict=True):
            if error:
                results.append({"success": False, "errors": [error]})
                continue
            fields = {k: v for k, v in record.items() if k != "attributes"}
            obj = record["attributes"]["type"]
            if upsert_key is not None:
                match = next((r for r in self.all(obj) if _same(_get(r, upsert_key), fields[upsert_key])), None)
                if match is None:
                    results.append({"id": self._create(obj, fields), "success": True, "created": True, "errors": []})
                else:
                    match.update(fields)
                    results.append({"id": match["Id"], "success": True, "created": False, "errors": []})
            elif method == "POST":
                results.append({"id": self._create(obj, fields), "success": True, "errors": []})
            else:
                record_id = fields.pop("Id", None) or fields.pop("id")
                self.records[obj.lower()][record_id].update(fields)
                results.append({"id": record_id, "success": True, "errors": []})
        return 200, {}, results

    def _problem(self, method: str, record: dict[str, Any], upsert_key: str | None) -> dict[str, Any] | None:
        obj = record.get("attributes", {}).get("type")
        if not obj:
            return {"statusCode": "INVALID_TYPE", "message": "attributes.type required"}
        if method == "POST" and obj == "Contact" and not record.get("LastName"):
            return {
                "statusCode": "REQUIRED_FIELD_MISSING",
                "message": "Required fields are missing",
                "fields": ["LastName"],
            }
        if method == "PATCH" and upsert_key is None:
            record_id = record.get("Id") or record.get("id")
            found = self.records.get(obj.lower(), {}).get(record_id)
            if found is None or found["IsDeleted"]:
                return {"statusCode": "ENTITY_IS_DELETED", "message": f"no such {obj} {record_id}"}
        return None


def _same(a: Any, b: Any) -> bool:
    return a.lower() == b.lower() if isinstance(a, str) and isinstance(b, str) else bool(a == b)


# --- GoHighLevel -----------------------------------------------------------------------------


class FakeGoHighLevel(FakeServer):
    def __init__(self, api_key: str = "ghl-key", location_id: str = "loc123") -> None:
        self.api_key = api_key
        self.location_id = location_id
        self.contacts: dict[str, dict[str, Any]] = {}
        self.tasks: dict[str, dict[str, Any]] = {}
        self.custom_fields = [
            {
                "id": "cfScore0000000000001",
                "name": "VLPR Score",
                "fieldKey": "contact.vlpr_score",
                "dataType": "NUMERICAL",
            },
            {"id": "cfGrade0000000000002", "name": "VLPR Grade", "fieldKey": "contact.vlpr_grade", "dataType": "TEXT"},
            {
                "id": "cfNext00000000000003",
                "name": "Next Action",
                "fieldKey": "contact.next_action",
                "dataType": "TEXT",
            },
            {"id": "cfSize00000000000004", "name": "Company Size", "fieldKey": "contact.company_size"},
            {"id": "cfVisit0000000000005", "name": "Website Visits", "fieldKey": "contact.website_visits"},
            {"id": "cfOpens0000000000006", "name": "Emails Opened", "fieldKey": "contact.emails_opened"},
            {"id": "cfCall00000000000007", "name": "Called Business", "fieldKey": "contact.called_business"},
        ]
        self.counter = 0
        super().__init__()

    def new_id(self) -> str:
        self.counter += 1
        return f"gh{self.counter:018d}"

    def add_contact(self, **fields: Any) -> str:
        with self.lock:
            contact_id = self.new_id()
            self.contacts[contact_id] = {"id": contact_id, "locationId": self.location_id, "customFields": [], **fields}
            return contact_id

    def writes(self, method: str | None = None) -> list[Seen]:
        """Requests that change something (a search is a POST that reads)."""
        return [r for r in super().writes(method) if r.path != "/contacts/search"]

    def authorise(self, path: str, headers: dict[str, str]) -> Reply | None:
        if self.revoked or headers.get("authorization") != f"Bearer {self.api_key}":
            return 401, {}, {"statusCode": 401, "message": "Invalid JWT"}
        if headers.get("version") != "2021-07-28":
            return 400, {}, {"statusCode": 400, "message": "Version header was not found"}
        return None

    def route(self, method: str, path: str, query: dict[str, str], body: Any) -> Reply:
        if path == f"/locations/{self.location_id}/customFields" and method == "GET":
            return 200, {}, {"customFields": self.custom_fields}
        if path == "/contacts/search" and method == "POST":
            if body.get("locationId") != self.location_id:
                return 403, {}, {"statusCode": 403, "message": "The token does not have access to this location."}
            found = list(self.contacts.values())
            for flt in body.get("filters") or []:
                found = [c for c in found if flt["field"] == "email" and c.get("email") == flt["value"]]
            return 200, {}, {"contacts": found[: body.get("pageLimit", 20)], "total": len(found)}
        if path == "/contacts/" and method == "POST":
            if body.get("locationId") != self.location_id:
                return 422, {}, {"statusCode": 422, "message": "locationId is required"}
            contact_id = self.new_id()
            contact = {"id": contact_id, **self._contact_fields(body)}
            self.contacts[contact_id] = contact
            return 201, {}, {"contact": contact}
        if m := re.fullmatch(r"/contacts/(\w+)", path):
            contact = self.contacts.get(m.group(1))
            if contact is None:
                return 400, {}, {"statusCode": 400, "message": "Contact not found"}
            if method == "GET":
                return 200, {}, {"contact": contact}
            if method == "PUT":
                contact.update(self._contact_fields(body, contact))
                return 200, {}, {"succeded": True, "contact": contact}
            if method == "DELETE":
                del self.contacts[m.group(1)]
                return 200, {}, {"succeded": True}
        if m := re.fullmatch(r"/contacts/(\w+)/tasks(?:/(\w+))?", path):
            contact_id, task_id = m.group(1), m.group(2)
            if contact_id not in self.contacts:
                return 400, {}, {"statusCode": 400, "message": "Contact not found"}
            if task_id is None and method == "GET":
                return 200, {}, {"tasks": [t for t in self.tasks.values() if t["contactId"] == contact_id]}
            if task_id is None and method == "POST":
                if not body.get("title"):
                    return 422, {}, {"statusCode": 422, "message": ["title should not be empty"]}
                task = {"id": self.new_id(), "contactId": contact_id, **body}
                self.tasks[task["id"]] = task
                return 201, {}, {"task": task}
            task = self.tasks.get(task_id or "")
            if task is None or task["contactId"] != contact_id:
                return 404, {}, {"statusCode": 404, "message": "Task not found"}
            if method == "PUT":
                task.update(body)
                return 200, {}, {"task": task}
            if method == "DELETE":
                del self.tasks[task["id"]]
                return 200, {}, {"succeded": True}
        return 404, {}, {"statusCode": 404, "message": f"Cannot {method} {path}"}

    def _contact_fields(self, body: dict[str, Any], current: dict[str, Any] | None = None) -> dict[str, Any]:
        fields = {k: v for k, v in body.items() if k not in ("customFields", "locationId")}
        values = {c["id"]: c["value"] for c in (current or {}).get("customFields", [])}
        known = {d["id"] for d in self.custom_fields}
        for c in body.get("customFields", []):
            assert c["id"] in known, f"unknown custom field id {c['id']}"
            values[c["id"]] = c["field_value"]
        return {**fields, "customFields": [{"id": k, "value": v} for k, v in values.items()]}
