"""Records in one SQLite file, schemaless for now: every record is a JSON object in one table.

Field and object names are case-insensitive, as in SOQL: the store keeps them lower-cased,
and queries return fields under the casing the SELECT used. Nothing a guest supplies is
ever part of SQL text: field names reach SQLite as bound JSON paths (after being checked
against the identifier pattern), values as bound parameters.

Isolation: each transaction has its own connection. It reads from a snapshot until its
first write; the first write takes the database's write lock (waiting up to
``busy_timeout`` for other writers), from which point it also sees what others committed
before it. Writers are thereby serialised, readers never wait, and nothing a transaction
writes is visible to others before it commits.
"""

from __future__ import annotations

import hashlib
import json
import math
import os
import secrets
import sqlite3
import string
import tempfile
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path
from types import TracebackType
from typing import Any, Literal

from circuit_host.connectors.records import DmlOp, DmlResult, QueryResult
from circuit_host.connectors.soql import (
    IDENTIFIER,
    INT64_MAX,
    INT64_MIN,
    And,
    Bind,
    Comparison,
    Condition,
    Constant,
    Field,
    In,
    Includes,
    Like,
    Not,
    Operand,
    Query,
    Scalar,
    Temporal,
    bind_count,
    bind_list,
    bind_scalar,
    error_at,
    parse,
)
from circuit_host.errors import CircuitError, DmlError, QueryError

_SCHEMA = """
CREATE TABLE IF NOT EXISTS records (
    object TEXT NOT NULL,              -- lower-cased object name
    id TEXT PRIMARY KEY,
    data TEXT NOT NULL,                -- JSON object keyed by lower-cased field name
    is_deleted INTEGER NOT NULL DEFAULT 0,
    created_date TEXT NOT NULL,        -- ISO-8601 UTC
    last_modified_date TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS records_by_object ON records (object, is_deleted);
"""

_BASE62 = string.digits + string.ascii_uppercase + string.ascii_lowercase
_KNOWN_PREFIXES = {
    "account": "001",
    "contact": "003",
    "user": "005",
    "opportunity": "006",
    "lead": "00Q",
    "task": "00T",
}
# Fields the store maintains, by lower-cased name, with the column that holds them.
_SYSTEM_COLUMNS = {
    "id": "id",
    "createddate": "created_date",
    "lastmodifieddate": "last_modified_date",
    "isdeleted": "is_deleted",
}
_READ_ONLY = frozenset({"createddate", "lastmodifieddate", "isdeleted"})
_SQL_COMPARISONS = {"=": "=", "!=": "<>", "<": "<", "<=": "<=", ">": ">", ">=": ">="}


def record_id_prefix(object_name: str) -> str:
    """The 3-character Id prefix of an object: Salesforce's for standard ones, else derived."""
    key = object_name.lower()
    if key in _KNOWN_PREFIXES:
        return _KNOWN_PREFIXES[key]
    n = int.from_bytes(hashlib.sha256(key.encode()).digest()[:4], "big") % (62 * 62)
    return "a" + _BASE62[n // 62] + _BASE62[n % 62]


def new_record_id(object_name: str) -> str:
    """A fresh 18-character Id: the object prefix and 15 random base62 characters."""
    return record_id_prefix(object_name) + "".join(secrets.choice(_BASE62) for _ in range(15))


class SqliteRecords:
    """A records connector on a SQLite file; ``path=None`` uses a temporary file removed on close."""

    def __init__(self, path: Path | None = None, *, busy_timeout: float = 30.0) -> None:
        self._temporary = path is None
        if path is None:
            fd, name = tempfile.mkstemp(prefix="circuit-records-", suffix=".sqlite3")
            os.close(fd)
            path = Path(name)
        self.path = path
        self._busy_timeout = busy_timeout
        self._closed = False
        conn = self._connect()
        try:
            conn.execute("PRAGMA journal_mode=WAL")
            conn.executescript(_SCHEMA)
        finally:
            conn.close()

    def _connect(self) -> sqlite3.Connection:
        return sqlite3.connect(self.path, timeout=self._busy_timeout, isolation_level=None, check_same_thread=False)

    def begin(self) -> SqliteTransaction:
        if self._closed:
            raise RuntimeError("records store is closed")
        return SqliteTransaction(self._connect())

    def close(self) -> None:
        if self._closed:
            return
        self._closed = True
        if self._temporary:
            for suffix in ("", "-wal", "-shm"):
                Path(f"{self.path}{suffix}").unlink(missing_ok=True)

    def __enter__(self) -> SqliteRecords:
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()


class SqliteTransaction:
    """One execution's transaction on its own connection; see the module docstring."""

    def __init__(self, conn: sqlite3.Connection) -> None:
        self._conn = conn
        self._state: Literal["idle", "reading", "writing", "closed"] = "idle"
        self._savepoints = 0

    # --- lifecycle ---------------------------------------------------------------------

    def _enter(self, state: Literal["reading", "writing"]) -> None:
        if self._state == "closed":
            raise RuntimeError("transaction is closed")
        if state == "reading" and self._state == "idle":
            self._conn.execute("BEGIN DEFERRED")
            self._state = "reading"
        elif state == "writing" and self._state != "writing":
            if self._state == "reading":
                # Nothing written yet, so ending the read snapshot loses nothing; taking the
                # write lock from a stale snapshot would fail instead of waiting.
                self._conn.execute("COMMIT")
                self._state = "idle"
            try:
                self._conn.execute("BEGIN IMMEDIATE")
            except sqlite3.OperationalError as e:
                raise CircuitError(f"records store busy: {e}") from e
            self._state = "writing"

    def _finish(self, statement: str) -> None:
        if self._state == "closed":
            raise RuntimeError("transaction is closed")
        try:
            if self._state != "idle":
                self._conn.execute(statement)
        finally:
            self._state = "closed"
            self._conn.close()

    def commit(self) -> None:
        self._finish("COMMIT")

    def rollback(self) -> None:
        self._finish("ROLLBACK")

    def close(self) -> None:
        if self._state != "closed":
            self._finish("ROLLBACK")

    def __enter__(self) -> SqliteTransaction:
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()

    # --- queries -----------------------------------------------------------------------

    def query(self, soql: str, binds: Mapping[str, Any], max_rows: int) -> QueryResult:
        if max_rows < 0:
            raise ValueError("max_rows must not be negative")
        parsed = parse(soql)
        sql, params = _compile(parsed, binds, max_rows)
        self._enter("reading")
        try:
            found = self._conn.execute(sql, params).fetchall()
        except sqlite3.OperationalError as e:
            # The parser's caps on nesting and conditions keep queries inside SQLite's parser
            # stack and expression depth limits; this is only a backstop.
            if "stack overflow" in str(e) or "too large" in str(e) or "too many" in str(e):
                raise QueryError(f"query is too complex: {e}") from None
            raise
        if parsed.count:
            return QueryResult([], int(found[0][0]))
        return QueryResult([_project(parsed.fields, row) for row in found], len(found))

    # --- DML ---------------------------------------------------------------------------

    def dml(
        self,
        op: DmlOp,
        object_name: str,
        rows: Sequence[Mapping[str, Any]],
        external_id: str = "Id",
    ) -> DmlResult:
        op = DmlOp(op)
        obj = _object_key(object_name)
        self._enter("writing")
        with self._statement():
            statement = _Statement(self._conn, obj, object_name)
            if op is DmlOp.INSERT:
                return statement.insert(rows)
            if op is DmlOp.UPDATE:
                return statement.update(rows)
            if op is DmlOp.UPSERT:
                return statement.upsert(rows, external_id)
            return statement.set_deleted(rows, deleted=op is DmlOp.DELETE)

    def seed(self, object_name: str, rows: Sequence[Mapping[str, Any]]) -> list[str]:
        obj = _object_key(object_name)
        self._enter("writing")
        with self._statement():
            return _Statement(self._conn, obj, object_name).seed(rows)

    def fetch(self, object_name: str, ids: Sequence[str]) -> list[dict[str, Any]]:
        """Host only: every stored field of these records, deleted ones included, in ``ids`` order."""
        obj = _object_key(object_name)
        self._enter("reading")
        found: dict[str, dict[str, Any]] = {}
        wanted = list(dict.fromkeys(i for i in ids if isinstance(i, str)))
        for start in range(0, len(wanted), 500):
            chunk = wanted[start : start + 500]
            for record_id, data_json, deleted, created, modified in self._conn.execute(
                "SELECT id, data, is_deleted, created_date, last_modified_date FROM records "
                "WHERE object = ? AND id IN (SELECT value FROM json_each(?))",
                (obj, json.dumps(chunk)),
            ):
                record: dict[str, Any] = {"Id": record_id, **json.loads(data_json)}
                record.update(IsDeleted=bool(deleted), CreatedDate=created, LastModifiedDate=modified)
                found[record_id] = record
        return [found[i] for i in ids if i in found]

    @contextmanager
    def savepoint(self) -> Iterator[None]:
        """A nested all-or-none scope: an exception inside undoes its writes and propagates."""
        self._enter("writing")
        self._savepoints += 1
        name = f"circuit_scope_{self._savepoints}"
        self._conn.execute(f"SAVEPOINT {name}")
        try:
            yield
        except BaseException:
            self._conn.execute(f"ROLLBACK TO {name}")
            self._conn.execute(f"RELEASE {name}")
            raise
        finally:
            self._savepoints -= 1
        self._conn.execute(f"RELEASE {name}")

    @contextmanager
    def _statement(self) -> Iterator[None]:
        """All-or-none: undo everything the statement wrote if any row fails."""
        self._conn.execute("SAVEPOINT circuit_statement")
        try:
            yield
        except BaseException:
            self._conn.execute("ROLLBACK TO circuit_statement")
            self._conn.execute("RELEASE circuit_statement")
            raise
        self._conn.execute("RELEASE circuit_statement")


# --- query compilation -------------------------------------------------------------------


def _compile(query: Query, binds: Mapping[str, Any], max_rows: int) -> tuple[str, list[Any]]:
    """SQL text built only from fixed fragments, and the parameters carrying everything else."""
    compiler = _Compiler(binds)
    for f in query.fields:
        compiler.check_field(f)
    compiler.params.append(_object_key(query.object_name, QueryError))
    where = "object = ? AND is_deleted = 0"
    if query.where is not None:
        where += " AND " + compiler.condition(query.where)
    offset = bind_count(binds, query.offset) if query.offset is not None else 0
    limit = bind_count(binds, query.limit) if query.limit is not None else None
    if query.count:
        compiler.params += [-1 if limit is None else limit, offset]
        return f"SELECT count(*) FROM (SELECT 1 FROM records WHERE {where} LIMIT ? OFFSET ?)", compiler.params
    order = [
        f"{compiler.column(key.field)} {'DESC' if key.descending else 'ASC'} "
        f"NULLS {'FIRST' if key.nulls_first else 'LAST'}"
        for key in query.order_by
    ]
    compiler.params += [max_rows + 1 if limit is None else min(limit, max_rows + 1), offset]
    sql = (
        f"SELECT id, data, created_date, last_modified_date FROM records WHERE {where} "
        f"ORDER BY {', '.join([*order, 'rowid'])} LIMIT ? OFFSET ?"
    )
    return sql, compiler.params


class _Compiler:
    def __init__(self, binds: Mapping[str, Any]) -> None:
        self.binds = binds
        self.params: list[Any] = []

    def check_field(self, f: Field) -> None:
        if len(f.path) > 1:
            raise error_at(f.pos, f"parent field {f.name} is not supported yet")

    def column(self, f: Field) -> str:
        """The SQL expression for a field; text compares case-insensitively, as in SOQL."""
        self.check_field(f)
        key = f.path[0].lower()
        if key in _SYSTEM_COLUMNS:
            return _SYSTEM_COLUMNS[key]
        self.params.append(_json_path(key))
        return "json_extract(data, ?) COLLATE NOCASE"

    def condition(self, c: Condition) -> str:
        # Every predicate is two-valued (never NULL) so that NOT behaves as in SOQL:
        # a null field is != any value and NOT IN any list.
        if isinstance(c, Comparison):
            value = self.scalar(c.value)
            if value is None:
                if c.op not in ("=", "!="):
                    raise error_at(c.value.pos, f"NULL can only be compared with = or !=, not {c.op}")
                return f"{self.column(c.field)} IS {'NOT ' if c.op == '!=' else ''}NULL"
            sql = f"coalesce({self.column(c.field)} {_SQL_COMPARISONS[c.op]} ?, {int(c.op == '!=')})"
            self.params.append(value)
            return sql
        if isinstance(c, Like):
            pattern = self.scalar(c.pattern)
            if not isinstance(pattern, str):
                raise error_at(c.pattern.pos, "LIKE needs a string pattern")
            sql = f"coalesce({self.column(c.field)} LIKE ? ESCAPE '\\', 0)"
            self.params.append(pattern)
            return sql
        if isinstance(c, Includes):
            raise error_at(c.field.pos, "INCLUDES and EXCLUDES need a typed store (CircuitDB)")
        if isinstance(c, In):
            if isinstance(c.values, tuple):
                values = [self.scalar(constant) for constant in c.values]
            else:
                values = bind_list(self.binds, c.values)
            sql = f"coalesce({self.column(c.field)} IN (SELECT value FROM json_each(?)), 0)"
            self.params.append(json.dumps([v for v in values if v is not None]))
            if None in values:
                sql = f"({sql} OR {self.column(c.field)} IS NULL)"
            return f"NOT {sql}" if c.negated else sql
        if isinstance(c, Not):
            return f"NOT {self.condition(c.operand)}"
        op = " AND " if isinstance(c, And) else " OR "
        return "(" + op.join(self.condition(operand) for operand in c.operands) + ")"

    def scalar(self, operand: Operand) -> Scalar:
        if isinstance(operand, Bind):
            return bind_scalar(self.binds, operand)
        if isinstance(operand, Constant):
            return operand.value
        kind = "date" if isinstance(operand, Temporal) else "relative date"
        raise error_at(operand.pos, f"{kind} literals need a typed store (CircuitDB)")


def _json_path(key: str) -> str:
    if not IDENTIFIER.fullmatch(key):  # the parser guarantees this; never trust it for SQL
        raise QueryError(f"invalid field name {_shown(key)}")
    return f'$."{key}"'


def _project(fields: tuple[Field, ...], row: tuple[str, str, str, str]) -> dict[str, Any]:
    record_id, data_json, created, modified = row
    data: dict[str, Any] = json.loads(data_json)
    system = {"id": record_id, "createddate": created, "lastmodifieddate": modified, "isdeleted": False}
    record: dict[str, Any] = {}
    if not any(f.name.lower() == "id" for f in fields):
        record["Id"] = record_id
    for f in fields:
        key = f.name.lower()
        record[f.name] = system[key] if key in system else data.get(key)
    return record


# --- DML ---------------------------------------------------------------------------------


def _object_key(object_name: str, error: type[CircuitError] = DmlError) -> str:
    if not isinstance(object_name, str) or not IDENTIFIER.fullmatch(object_name):
        raise error(f"invalid object name {_shown(object_name)}")
    return object_name.lower()


def _shown(value: object) -> str:
    """A guest-supplied value for an error message, cut short."""
    text = repr(value)
    return text if len(text) <= 60 else text[:57] + "..."


def _now() -> str:
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3] + "Z"


def _dumps(data: Mapping[str, Scalar]) -> str:
    return json.dumps(data, allow_nan=False, separators=(",", ":"))


class _Row:
    """One validated DML row: its Id, its writable fields (lower-cased) and any system dates."""

    def __init__(self, index: int, row: object, *, allow_dates: bool = False) -> None:
        if not isinstance(row, Mapping):
            raise DmlError(f"row {index}: expected a map of field names to values")
        self.index = index
        self.id: str | None = None
        self.fields: dict[str, Scalar] = {}
        self.dates: dict[str, str] = {}
        self.names: dict[str, str] = {}  # lower-cased -> as written
        for name, value in row.items():
            if not isinstance(name, str) or not IDENTIFIER.fullmatch(name):
                raise DmlError(f"row {index}: invalid field name {_shown(name)}")
            key = name.lower()
            if key in self.names:
                raise self.error(name, f"duplicate of field {self.names[key]}")
            self.names[key] = name
            checked = self.check_value(name, value)
            if key == "id":
                if checked is not None and not isinstance(checked, str):
                    raise self.error(name, "must be a string")
                self.id = checked
            elif key in _READ_ONLY:
                if not (allow_dates and key != "isdeleted"):
                    raise self.error(name, "is not writeable")
                if not isinstance(checked, str):
                    raise self.error(name, "must be an ISO-8601 string")
                self.dates[key] = checked
            else:
                self.fields[key] = checked

    def error(self, field_name: str, message: str) -> DmlError:
        return DmlError(f"row {self.index}: field {field_name}: {message}")

    def id_error(self, message: str) -> DmlError:
        return self.error(self.names.get("id", "Id"), message)

    def check_value(self, name: str, value: object) -> Scalar:
        if value is None or isinstance(value, bool | str):
            return value
        if isinstance(value, int):
            if not INT64_MIN <= value <= INT64_MAX:
                raise self.error(name, "integer out of 64-bit range")
            return value
        if isinstance(value, float):
            if not math.isfinite(value):
                raise self.error(name, "number must be finite")
            return value
        raise self.error(name, f"unsupported value of type {type(value).__name__}")


class _Statement:
    """One DML statement's work on one object, inside the caller's savepoint."""

    def __init__(self, conn: sqlite3.Connection, obj: str, object_name: str) -> None:
        self.conn = conn
        self.obj = obj
        self.object_name = object_name
        self.now = _now()
        self.seen_ids: dict[str, int] = {}

    def rows(self, rows: Sequence[Mapping[str, Any]], *, allow_dates: bool = False) -> Iterator[_Row]:
        for index, row in enumerate(rows):
            yield _Row(index, row, allow_dates=allow_dates)

    def claim_id(self, row: _Row, record_id: str) -> None:
        """Reject the second row of a statement that targets an Id already targeted."""
        if record_id in self.seen_ids:
            raise row.id_error(f"duplicate of row {self.seen_ids[record_id]}")
        self.seen_ids[record_id] = row.index

    def existing(self, row: _Row, record_id: str, *, deleted: bool) -> dict[str, Scalar]:
        """The stored fields of this object's record ``record_id``, in the expected bin state."""
        found = self.conn.execute("SELECT object, data, is_deleted FROM records WHERE id = ?", (record_id,)).fetchone()
        if found is None or found[0] != self.obj:
            raise row.id_error(f"no {self.object_name} with Id {_shown(record_id)}")
        if bool(found[2]) != deleted:
            where = "is not in" if deleted else "is in"
            raise row.id_error(f"{self.object_name} {record_id} {where} the recycle bin")
        data: dict[str, Scalar] = json.loads(found[1])
        return data

    def required_id(self, row: _Row, what: str) -> str:
        if row.id is None:
            raise row.id_error(f"required for {what}")
        self.claim_id(row, row.id)
        return row.id

    def write_new(self, fields: Mapping[str, Scalar]) -> str:
        record_id = new_record_id(self.obj)
        self.conn.execute(
            "INSERT INTO records (object, id, data, is_deleted, created_date, last_modified_date) "
            "VALUES (?, ?, ?, 0, ?, ?)",
            (self.obj, record_id, _dumps(fields), self.now, self.now),
        )
        return record_id

    def write_changes(self, row: _Row, record_id: str) -> None:
        merged = {**self.existing(row, record_id, deleted=False), **row.fields}
        self.conn.execute(
            "UPDATE records SET data = ?, last_modified_date = ? WHERE id = ?",
            (_dumps(merged), self.now, record_id),
        )

    def insert(self, rows: Sequence[Mapping[str, Any]]) -> DmlResult:
        result = DmlResult()
        for row in self.rows(rows):
            if row.id is not None:
                raise row.id_error("must not be set on insert (use update or upsert)")
            result.ids.append(self.write_new(row.fields))
            result.created.append(True)
        return result

    def update(self, rows: Sequence[Mapping[str, Any]]) -> DmlResult:
        result = DmlResult()
        for row in self.rows(rows):
            record_id = self.required_id(row, "update")
            self.write_changes(row, record_id)
            result.ids.append(record_id)
            result.created.append(False)
        return result

    def upsert(self, rows: Sequence[Mapping[str, Any]], external_id: str) -> DmlResult:
        if not isinstance(external_id, str) or not IDENTIFIER.fullmatch(external_id):
            raise DmlError(f"external_id: invalid field name {_shown(external_id)}")
        key = external_id.lower()
        if key in _READ_ONLY:
            raise DmlError(f"external_id: {external_id} cannot be an upsert key")
        seen_keys: dict[tuple[str, Scalar], int] = {}
        result = DmlResult()
        for row in self.rows(rows):
            if key == "id":
                target = row.id
            else:
                target = self.match(row, key, external_id, seen_keys)
                if row.id is not None and row.id != target:
                    raise row.id_error(f"does not match the {self.object_name} found by {external_id}")
            if target is None:
                result.ids.append(self.write_new(row.fields))
                result.created.append(True)
            else:
                self.claim_id(row, target)
                self.write_changes(row, target)
                result.ids.append(target)
                result.created.append(False)
        return result

    def match(self, row: _Row, key: str, external_id: str, seen_keys: dict[tuple[str, Scalar], int]) -> str | None:
        """The Id of the live record whose ``key`` field equals the row's, if there is one."""
        value = row.fields.get(key)
        if value is None:
            raise row.error(external_id, "upsert key must have a value")
        normalised = (type(value).__name__, value.lower() if isinstance(value, str) else value)
        if normalised in seen_keys:
            raise row.error(external_id, f"duplicate upsert key, also in row {seen_keys[normalised]}")
        seen_keys[normalised] = row.index
        matches = self.conn.execute(
            "SELECT id FROM records WHERE object = ? AND is_deleted = 0 "
            "AND json_extract(data, ?) COLLATE NOCASE = ? LIMIT 2",
            (self.obj, _json_path(key), value),
        ).fetchall()
        if len(matches) > 1:
            raise row.error(external_id, f"more than one {self.object_name} has {external_id} {_shown(value)}")
        return str(matches[0][0]) if matches else None

    def set_deleted(self, rows: Sequence[Mapping[str, Any]], *, deleted: bool) -> DmlResult:
        result = DmlResult()
        for row in self.rows(rows):
            record_id = self.required_id(row, "delete" if deleted else "undelete")
            self.existing(row, record_id, deleted=not deleted)
            self.conn.execute(
                "UPDATE records SET is_deleted = ?, last_modified_date = ? WHERE id = ?",
                (int(deleted), self.now, record_id),
            )
            result.ids.append(record_id)
            result.created.append(False)
        return result

    def seed(self, rows: Sequence[Mapping[str, Any]]) -> list[str]:
        """Insert, or overwrite by Id, records exactly as given; a deleted one stays deleted."""
        prefix = record_id_prefix(self.obj)
        ids: list[str] = []
        for row in self.rows(rows, allow_dates=True):
            record_id = row.id if row.id is not None else new_record_id(self.obj)
            if len(record_id) != 18 or not record_id.startswith(prefix) or record_id.strip(_BASE62):
                raise row.id_error(
                    f"{_shown(record_id)} is not a {self.object_name} Id (18 characters starting {prefix})"
                )
            self.claim_id(row, record_id)
            found = self.conn.execute("SELECT object, created_date FROM records WHERE id = ?", (record_id,)).fetchone()
            if found is not None and found[0] != self.obj:
                raise row.id_error(f"{record_id} belongs to another object")
            created = row.dates.get("createddate", found[1] if found else self.now)
            modified = row.dates.get("lastmodifieddate", self.now)
            self.conn.execute(
                "INSERT INTO records (object, id, data, is_deleted, created_date, last_modified_date) "
                "VALUES (?, ?, ?, 0, ?, ?) ON CONFLICT (id) DO UPDATE SET data = excluded.data, "
                "created_date = excluded.created_date, last_modified_date = excluded.last_modified_date",
                (self.obj, record_id, _dumps(row.fields), created, modified),
            )
            ids.append(record_id)
        return ids
