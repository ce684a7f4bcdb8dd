"""One DML statement on one object: validate every row, check references and uniqueness, write.

The caller runs a statement inside a savepoint, so an error leaves nothing of it behind.
Errors name the row index and the field, like ``row 2: field Email: ...``. Checks run in
passes over all rows (values, then required fields, then references, then uniqueness), so
the row named is the first failing one of the first failing pass.
"""

from __future__ import annotations

import weakref
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from ..connectors.records import DmlOp, DmlResult
from ..errors import DmlError
from ..soql.parser import IDENTIFIER
from .schema import (
    SYSTEM_KEYS,
    TEXT_LIKE,
    FieldDef,
    FieldType,
    ObjectDef,
    Schema,
    is_record_id,
    new_record_ids,
)
from .tables import value_table
from .values import ValueProblem, parse_datetime, shown, to_storage


class UnknownField(DmlError):
    """A row names a field the schema snapshot lacks (another process may just have added it)."""


class _Row:
    """One row of a statement: its Id (if given) and its checked column values by field key.

    A plain class with slots: a statement makes one per row, and a dataclass's factories cost more.
    """

    __slots__ = ("dates", "id", "index", "names", "target", "values")

    def __init__(self, index: int) -> None:
        self.index = index
        self.id: str | None = None
        self.values: dict[str, Any] = {}
        self.names: dict[str, str] = {}  # field key -> as the caller wrote it
        self.dates: dict[str, datetime] = {}  # seed only: CreatedDate, LastModifiedDate
        self.target: str | None = None  # the record it writes: None inserts a new one

    def error(self, name: str, message: str) -> DmlError:
        return DmlError(f"row {self.index}: field {self.names.get(name.lower(), name)}: {message}")


@dataclass(frozen=True)
class _Bulk:
    """One write compiled for a table and a set of columns: driver SQL and per-parameter converters.

    A 200-row statement then costs one ``executemany`` and a tuple per row, instead of SQLAlchemy
    building and processing parameters row by row.
    """

    sql: str
    names: tuple[str, ...]  # parameter names, in positional order when the driver is positional
    processors: tuple[Callable[[Any], Any] | None, ...]
    positional: bool

    @classmethod
    def compile(cls, statement: sa.Insert | sa.Update, conn: Connection, names: Sequence[str]) -> _Bulk:
        dialect = conn.dialect
        compiled = statement.compile(dialect=dialect, column_keys=list(names))
        order = tuple(compiled.positiontup) if compiled.positiontup is not None else tuple(compiled.binds)
        processors = tuple(compiled.binds[n].type.dialect_impl(dialect).bind_processor(dialect) for n in order)
        return cls(compiled.string, order, processors, compiled.positiontup is not None)

    def execute(self, conn: Connection, rows: Sequence[Mapping[str, Any]], shared: Mapping[int, Any]) -> None:
        """Run for ``rows`` (parameter name -> value); ``shared`` maps ``id()`` of a value many rows
        hold (the statement's timestamp) to it converted once."""
        pairs = list(zip(self.names, self.processors, strict=True))
        params: list[Any] = []
        for row in rows:
            values = []
            for name, process in pairs:
                value = row[name]
                if process is not None and value is not None:
                    converted = shared.get(id(value), _MISSING)
                    value = process(value) if converted is _MISSING else converted
                values.append(value)
            params.append(tuple(values) if self.positional else dict(zip(self.names, values, strict=True)))
        conn.exec_driver_sql(self.sql, params)


_MISSING = object()
_BULK: weakref.WeakKeyDictionary[sa.Table, dict[tuple[str, str, tuple[str, ...]], _Bulk]] = (
    weakref.WeakKeyDictionary()
)  # per table (a schema change makes new tables), dialect, operation and columns


def _bulk(conn: Connection, table: sa.Table, operation: str, keys: tuple[str, ...]) -> _Bulk:
    cache = _BULK.setdefault(table, {})
    key = (conn.dialect.name, operation, keys)
    found = cache.get(key)
    if found is None:
        if operation == "insert":
            found = _Bulk.compile(table.insert(), conn, keys)
        else:
            # Bound names differ from the column names: SQLAlchemy reserves those for the SET clause.
            statement = (
                table.update()
                .where(table.c.id == sa.bindparam("target_id"))
                .values({k: sa.bindparam(f"new_{k}", type_=table.c[k].type) for k in keys})
            )
            found = _Bulk.compile(statement, conn, [])
        cache[key] = found
    return found


class Statement:
    """The work of one statement; ``run`` dispatches on the operation."""

    def __init__(
        self,
        conn: Connection,
        schema: Schema,
        obj: ObjectDef,
        table_of: Callable[[ObjectDef], sa.Table],
        now: datetime,
    ) -> None:
        self.conn = conn
        self.schema = schema
        self.obj = obj
        self.table_of = table_of
        self.table = table_of(obj)
        self.now = now
        self.claimed: dict[str, int] = {}
        self.plans: dict[str, FieldDef] = {}  # field name as written -> field, checked once per statement

    def run(self, op: DmlOp, rows: Sequence[Mapping[str, Any]], external_id: str) -> DmlResult:
        if op is DmlOp.INSERT:
            parsed = list(self.parse(rows))
            for row in parsed:
                if row.id is not None:
                    raise row.error("Id", "must not be set on insert (use update or upsert)")
            return self.save(parsed)
        if op is DmlOp.UPDATE:
            parsed = list(self.parse(rows))
            states = self.states([row.id for row in parsed if row.id is not None])
            for row in parsed:
                row.target = self.live_target(row, row.id, states, "update")
            return self.save(parsed)
        if op is DmlOp.UPSERT:
            return self.upsert(list(self.parse(rows)), external_id)
        return self.set_deleted(rows, deleted=op is DmlOp.DELETE)

    # --- rows ------------------------------------------------------------------------------

    def parse(self, rows: Sequence[Mapping[str, Any]], *, allow_dates: bool = False) -> Iterator[_Row]:
        for index, raw in enumerate(rows):
            if not isinstance(raw, Mapping):
                raise DmlError(f"row {index}: expected a map of field names to values")
            row = _Row(index)
            for name, value in raw.items():
                f = self.plans.get(name) if isinstance(name, str) else None
                if f is None:
                    if not isinstance(name, str) or not IDENTIFIER.fullmatch(name):
                        raise DmlError(f"row {index}: invalid field name {shown(name)}")
                    f = self.obj.field(name)
                    if f is None:
                        raise UnknownField(f"row {index}: field {name}: no such field on {self.obj.name}")
                    self.plans[name] = f
                key = f.key
                if key in row.names:
                    raise DmlError(f"row {index}: field {name}: duplicate of field {row.names[key]}")
                row.names[key] = name
                if key == "id":
                    if value is not None and not isinstance(value, str):
                        raise row.error(name, "must be a string")
                    row.id = value
                elif f.system:
                    if not allow_dates or key == "isdeleted":
                        raise row.error(name, "is not writeable")
                    if not isinstance(value, str):
                        raise row.error(name, "must be an ISO-8601 string")
                    try:
                        row.dates[key] = parse_datetime(value)
                    except ValueProblem as e:
                        raise row.error(name, str(e)) from None
                else:
                    try:
                        row.values[key] = to_storage(f, value)
                    except ValueProblem as e:
                        raise row.error(name, str(e)) from None
            yield row

    def claim(self, row: _Row, record_id: str) -> None:
        """Refuse the second row of a statement that targets a record already targeted."""
        if record_id in self.claimed:
            raise row.error("Id", f"duplicate of row {self.claimed[record_id]}")
        self.claimed[record_id] = row.index

    def states(self, ids: Sequence[str]) -> dict[str, bool]:
        """IsDeleted of the records of this object among ``ids``."""
        wanted = sorted({i for i in ids if is_record_id(i, self.obj.prefix)})
        if not wanted:
            return {}
        id_field = self.obj.field("Id")
        assert id_field is not None
        listed = sa.select(value_table(wanted, id_field, self.conn.dialect).c.value)
        query = sa.select(self.table.c.id, self.table.c.isdeleted).where(self.table.c.id.in_(listed))
        return {str(i): bool(deleted) for i, deleted in self.conn.execute(query)}

    def live_target(self, row: _Row, record_id: str | None, states: Mapping[str, bool], what: str) -> str:
        if record_id is None:
            raise row.error("Id", f"required for {what}")
        if record_id not in states:
            raise row.error("Id", f"no {self.obj.name} with Id {shown(record_id)}")
        if states[record_id]:
            raise row.error("Id", f"{self.obj.name} {record_id} is in the recycle bin")
        self.claim(row, record_id)
        return record_id

    # --- writes ----------------------------------------------------------------------------

    def save(self, rows: list[_Row], *, seeding: bool = False) -> DmlResult:
        """Insert the rows without a target and update the others, after every check passes."""
        writable = [f for f in self.obj.fields if not f.system]
        defaults = {f.key: to_storage(f, f.default) for f in writable}
        required = [f for f in writable if f.required]
        for row in rows:
            if row.target is None or seeding:
                row.values = {**defaults, **row.values}
            for f in required:
                if f.key in row.values and row.values[f.key] in (None, ""):
                    missing = f.key not in row.names
                    raise row.error(f.name, "required field missing" if missing else "required field cannot be empty")
        self.check_references(rows)
        self.check_unique(rows)
        result = DmlResult()
        inserts: dict[tuple[str, ...], list[dict[str, Any]]] = {}  # one executemany per set of columns
        updates: dict[tuple[str, ...], list[dict[str, Any]]] = {}
        fresh = iter(new_record_ids(self.obj.prefix, sum(1 for row in rows if not (row.target or row.id))))
        for row in rows:
            created = row.target is None
            record_id = row.target or row.id or next(fresh)
            if created:
                values = {
                    **row.values,
                    "id": record_id,
                    "isdeleted": False,
                    "createddate": row.dates.get("createddate", self.now),
                    "lastmodifieddate": row.dates.get("lastmodifieddate", self.now),
                }
                inserts.setdefault(tuple(values), []).append(values)
            else:
                changes = {**row.values, "lastmodifieddate": row.dates.get("lastmodifieddate", self.now)}
                if "createddate" in row.dates:
                    changes["createddate"] = row.dates["createddate"]
                bound = {f"new_{key}": value for key, value in changes.items()}
                bound["target_id"] = record_id
                updates.setdefault(tuple(sorted(changes)), []).append(bound)
            result.ids.append(record_id)
            result.created.append(created)
        for keys, batch in updates.items():
            _bulk(self.conn, self.table, "update", keys).execute(self.conn, batch, self.shared())
        for keys, batch in inserts.items():
            _bulk(self.conn, self.table, "insert", keys).execute(self.conn, batch, self.shared())
        return result

    def shared(self) -> dict[int, Any]:
        """The statement's timestamp as each datetime column binds it, converted once per statement."""
        process = self.table.c.lastmodifieddate.type.dialect_impl(self.conn.dialect).bind_processor(self.conn.dialect)
        return {id(self.now): process(self.now) if process is not None else self.now}

    def upsert(self, rows: list[_Row], external_id: str) -> DmlResult:
        if not isinstance(external_id, str) or not IDENTIFIER.fullmatch(external_id):
            raise DmlError(f"external_id: invalid field name {shown(external_id)}")
        key_field = self.obj.field(external_id)
        if key_field is None:
            raise DmlError(f"external_id: no field {external_id} on {self.obj.name}")
        if key_field.key == "id":
            states = self.states([row.id for row in rows if row.id is not None])
            for row in rows:
                if row.id is not None:
                    row.target = self.live_target(row, row.id, states, "upsert")
            return self.save(rows)
        if not key_field.external_id:
            raise DmlError(f"external_id: {key_field.name} is not an external id field of {self.obj.name}")
        seen: dict[Any, int] = {}
        for row in rows:
            value = row.values.get(key_field.key)
            if value is None:
                raise row.error(key_field.name, "upsert key must have a value")
            normal = _normal(key_field, value)
            if normal in seen:
                raise row.error(key_field.name, f"duplicate upsert key, also in row {seen[normal]}")
            seen[normal] = row.index
        found = self.matches(key_field, [row.values[key_field.key] for row in rows])
        ids = [row.id for row in rows if row.id is not None]
        states = self.states(ids)
        for row in rows:
            target = found.get(_normal(key_field, row.values[key_field.key]))
            if row.id is not None and row.id != target:
                if row.id not in states:
                    raise row.error("Id", f"no {self.obj.name} with Id {shown(row.id)}")
                raise row.error("Id", f"does not match the {self.obj.name} found by {key_field.name}")
            if target is not None:
                self.claim(row, target)
                row.target = target
        return self.save(rows)

    def matches(self, f: FieldDef, values: Sequence[Any]) -> dict[Any, str]:
        """Live records whose field ``f`` has one of ``values``, by normalised value."""
        if not values:
            return {}
        column = self.table.c[f.key]
        table = value_table(values, f, self.conn.dialect)
        lowered = f.type in TEXT_LIKE
        listed = sa.select(sa.func.lower(table.c.value) if lowered else table.c.value)
        key = sa.func.lower(column) if lowered else column
        query = sa.select(self.table.c.id, column).where(key.in_(listed), self.table.c.isdeleted == sa.false())
        return {_normal(f, value): str(record_id) for record_id, value in self.conn.execute(query)}

    def set_deleted(self, rows: Sequence[Mapping[str, Any]], *, deleted: bool) -> DmlResult:
        parsed: list[_Row] = []
        for index, raw in enumerate(rows):
            if not isinstance(raw, Mapping):
                raise DmlError(f"row {index}: expected a map of field names to values")
            row = _Row(index)
            for name, value in raw.items():
                if isinstance(name, str) and name.lower() == "id":
                    row.names["id"] = name
                    if value is not None and not isinstance(value, str):
                        raise row.error(name, "must be a string")
                    row.id = value
            parsed.append(row)
        what = "delete" if deleted else "undelete"
        states = self.states([row.id for row in parsed if row.id is not None])
        for row in parsed:
            if row.id is None:
                raise row.error("Id", f"required for {what}")
            if row.id not in states:
                raise row.error("Id", f"no {self.obj.name} with Id {shown(row.id)}")
            if states[row.id] == deleted:
                where = "is in" if deleted else "is not in"
                raise row.error("Id", f"{self.obj.name} {row.id} {where} the recycle bin")
            self.claim(row, row.id)
            row.target = row.id
        if not deleted:
            self.check_restorable(parsed)
        ids = [row.id for row in parsed if row.id is not None]
        if ids:
            id_field = self.obj.field("Id")
            assert id_field is not None
            listed = sa.select(value_table(ids, id_field, self.conn.dialect).c.value)
            self.conn.execute(
                self.table.update()
                .where(self.table.c.id.in_(listed))
                .values(isdeleted=deleted, lastmodifieddate=self.now)
            )
        return DmlResult(ids, [False] * len(ids))

    def check_restorable(self, rows: list[_Row]) -> None:
        """An undeleted record must not collide with a live one on a unique field."""
        unique = [f for f in self.obj.fields if f.is_unique]
        if not unique or not rows:
            return
        by_id = {row.target: row for row in rows}
        id_field = self.obj.field("Id")
        assert id_field is not None
        listed = sa.select(value_table(list(by_id), id_field, self.conn.dialect).c.value)
        query = sa.select(self.table.c.id, *(self.table.c[f.key] for f in unique)).where(self.table.c.id.in_(listed))
        for record_id, *values in self.conn.execute(query):
            by_id[record_id].values = {f.key: v for f, v in zip(unique, values, strict=True)}
        self.check_unique(rows)

    def seed(self, rows: Sequence[Mapping[str, Any]]) -> list[str]:
        """Insert, or overwrite by Id, records as given (fields not given are cleared to defaults)."""
        parsed = list(self.parse(rows, allow_dates=True))
        for row in parsed:
            if row.id is not None:
                if not is_record_id(row.id, self.obj.prefix):
                    raise row.error(
                        "Id", f"{shown(row.id)} is not a {self.obj.name} Id (18 characters starting {self.obj.prefix})"
                    )
                self.claim(row, row.id)
        existing = self.states([row.id for row in parsed if row.id is not None])
        for row in parsed:
            if row.id is not None and row.id in existing:
                row.target = row.id
        return self.save(parsed, seeding=True).ids

    # --- checks ----------------------------------------------------------------------------

    def check_references(self, rows: list[_Row]) -> None:
        for f in self.obj.fields:
            if f.type is not FieldType.REFERENCE:
                continue
            wanted: dict[ObjectDef, dict[str, _Row]] = {}
            for row in rows:
                value = row.values.get(f.key)
                if value is None:
                    continue
                target = self.schema.by_prefix(value[:3])
                if target is None or target.name.lower() not in {t.lower() for t in f.reference_to}:
                    allowed = " or ".join(f.reference_to)
                    raise row.error(f.name, f"{shown(value)} is not the Id of a {allowed}")
                wanted.setdefault(target, {}).setdefault(value, row)
            for target, by_id in wanted.items():
                table = self.table_of(target)
                id_field = target.field("Id")
                assert id_field is not None
                listed = sa.select(value_table(list(by_id), id_field, self.conn.dialect).c.value)
                query = sa.select(table.c.id).where(table.c.id.in_(listed), table.c.isdeleted == sa.false())
                present = {str(i) for (i,) in self.conn.execute(query)}
                missing = [row for value, row in by_id.items() if value not in present]
                if missing:
                    row = min(missing, key=lambda r: r.index)
                    value = row.values[f.key]
                    raise row.error(f.name, f"no {target.name} with Id {shown(value)}")

    def check_unique(self, rows: list[_Row]) -> None:
        for f in self.obj.fields:
            if not f.is_unique:
                continue
            first: dict[Any, _Row] = {}
            for row in rows:
                value = row.values.get(f.key)
                if value is None:
                    continue
                normal = _normal(f, value)
                if normal in first:
                    raise row.error(f.name, f"duplicate value {shown(value)}, also in row {first[normal].index}")
                first[normal] = row
            if not first:
                continue
            owners = self.matches(f, [row.values[f.key] for row in first.values()])
            for normal, row in sorted(first.items(), key=lambda item: item[1].index):
                owner = owners.get(normal)
                if owner is not None and owner != row.target:
                    raise row.error(f.name, f"duplicate value {shown(row.values[f.key])}, already used by {owner}")


def _normal(f: FieldDef, value: Any) -> Any:
    return value.lower() if f.type in TEXT_LIKE and isinstance(value, str) else value


__all__ = ["SYSTEM_KEYS", "Statement"]
