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
from operator import itemgetter
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
from .tables import value_list, value_list_type, value_table, value_table_of
from .values import ValueProblem, parse_datetime, shown, storer, to_storage


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
class _Compiled:
    """One statement compiled once for a table: driver SQL, its parameters' converters and, for a
    read, its result columns' converters.

    Run through the driver cursor with plain tuples: a 200-row write costs one ``executemany`` and
    a tuple per row, a check one ``execute``, instead of SQLAlchemy building and processing the
    statement and its parameters each time.
    """

    sql: str
    names: tuple[str, ...]  # parameter names, in positional order when the driver is positional
    keys: tuple[str, ...]  # per parameter, the key of the row value it takes
    processors: tuple[Callable[[Any], Any] | None, ...]
    positional: bool
    results: tuple[Callable[[Any], Any] | None, ...] = ()

    @classmethod
    def compile(
        cls,
        statement: sa.Insert | sa.Update | sa.Select[Any],
        conn: Connection,
        names: Sequence[str] = (),
        key_of: Callable[[str], str] = lambda name: name,
    ) -> _Compiled:
        dialect = conn.dialect
        compiled = statement.compile(dialect=dialect, column_keys=list(names))
        order = tuple(compiled.positiontup) if compiled.positiontup is not None else tuple(compiled.binds)
        processors = tuple(compiled.binds[n].type.dialect_impl(dialect).bind_processor(dialect) for n in order)
        results: tuple[Callable[[Any], Any] | None, ...] = ()
        if isinstance(statement, sa.Select):
            results = tuple(
                c.type.dialect_impl(dialect).result_processor(dialect, None) for c in statement.selected_columns
            )
        keys = tuple(key_of(n) for n in order)
        return cls(compiled.string, order, keys, processors, compiled.positiontup is not None, results)

    def write(self, conn: Connection, rows: Sequence[Mapping[str, Any]], shared: Mapping[int, Any]) -> None:
        """Run for ``rows`` (row key -> value); ``shared`` maps ``id()`` of a value many rows hold
        (the statement's timestamp) to it converted once."""
        take = itemgetter(*self.keys)
        params: list[Any] = [take(row) for row in rows] if len(self.keys) > 1 else [(take(row),) for row in rows]
        converting = [(i, process) for i, process in enumerate(self.processors) if process is not None]
        if converting:
            # Column-wise, each distinct value object converted once (the rows all hold the statement's
            # timestamp, and booleans are two objects); every value stays alive meanwhile, so ids are unique.
            columns = list(zip(*params, strict=True))
            for i, process in converting:
                column = columns[i]
                done = {id(v): v for v in column}
                for key, value in done.items():
                    found = shared.get(key, _MISSING)
                    done[key] = (None if value is None else process(value)) if found is _MISSING else found
                columns[i] = tuple([done[id(v)] for v in column])
            params = list(zip(*columns, strict=True))
        if not self.positional:
            params = [dict(zip(self.names, values, strict=True)) for values in params]
        conn.exec_driver_sql(self.sql, params)

    def read(self, conn: Connection, values: Mapping[str, Any]) -> list[tuple[Any, ...]]:
        """The rows for one run with ``values`` (row key -> value), their columns converted."""
        bound = [
            value if process is None or value is None else process(value)
            for value, process in zip((values[k] for k in self.keys), self.processors, strict=True)
        ]
        params = tuple(bound) if self.positional else dict(zip(self.names, bound, strict=True))
        rows = [tuple(row) for row in conn.exec_driver_sql(self.sql, params).fetchall()]
        if not rows or not any(self.results):
            return rows
        columns = [
            column if process is None else list(map(process, column))
            for column, process in zip(zip(*rows, strict=True), self.results, strict=True)
        ]
        return list(zip(*columns, strict=True))


_MISSING = object()
_COMPILED: weakref.WeakKeyDictionary[sa.Table, dict[tuple[Any, ...], _Compiled]] = (
    weakref.WeakKeyDictionary()
)  # per table (a schema change makes new tables), dialect, statement kind and columns


def _compiled(conn: Connection, table: sa.Table, key: tuple[Any, ...], build: Callable[[], _Compiled]) -> _Compiled:
    cache = _COMPILED.setdefault(table, {})
    full = (conn.dialect.name, *key)
    found = cache.get(full)
    if found is None:
        found = cache[full] = build()
    return found


def _bulk(conn: Connection, table: sa.Table, operation: str, keys: tuple[str, ...]) -> _Compiled:
    """The insert, or the update by Id, of the columns ``keys``."""

    def build() -> _Compiled:
        if operation == "insert":
            return _Compiled.compile(table.insert(), conn, keys)
        # Bound names differ from the column names: SQLAlchemy reserves those for the SET clause.
        statement = (
            table.update()
            .where(table.c.id == sa.bindparam("target_id"))
            .values({k: sa.bindparam(f"new_{k}", type_=table.c[k].type) for k in keys})
        )
        return _Compiled.compile(statement, conn, key_of=lambda name: "id" if name == "target_id" else name[4:])

    return _compiled(conn, table, (operation, keys), build)


def _listed_read(
    conn: Connection, table: sa.Table, f: FieldDef, kind: str, select: Callable[[Any], sa.Select[Any]]
) -> _Compiled:
    """A read of ``table`` filtered by a list of values of field ``f``, bound as one parameter
    (``values``): ``select`` makes the statement from the list's one-column table."""

    def build() -> _Compiled:
        parameter = sa.bindparam("values", type_=value_list_type(f, conn.dialect))
        return _Compiled.compile(select(value_table_of(parameter, conn.dialect)), conn)

    return _compiled(conn, table, (kind, f.key), build)


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
        # field name as written -> (field, its key, its converter): checked once per statement
        self.plans: dict[str, tuple[FieldDef, str, Callable[[object], Any]]] = {}

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
        plans = self.plans
        for index, raw in enumerate(rows):
            if not isinstance(raw, Mapping):
                raise DmlError(f"row {index}: expected a map of field names to values")
            row = _Row(index)
            names, values = row.names, row.values
            for name, value in raw.items():
                plan = plans.get(name)
                if plan is None:
                    plan = self.plan(index, name)
                f, key, store = plan
                if key in names:
                    raise DmlError(f"row {index}: field {name}: duplicate of field {names[key]}")
                names[key] = name
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
                        values[key] = store(value)
                    except ValueProblem as e:
                        raise row.error(name, str(e)) from None
            yield row

    def plan(self, index: int, name: object) -> tuple[FieldDef, str, Callable[[object], Any]]:
        """The field a row's name resolves to, checked once per statement and name."""
        if not isinstance(name, str) or not IDENTIFIER.fullmatch(name):
            raise DmlError(f"row {index}: invalid field name {shown(name)}")
        f = self.obj.field(name)
        if f is None:
            raise UnknownField(f"row {index}: field {name}: no such field on {self.obj.name}")
        plan = self.plans[name] = (f, f.key, storer(f))
        return plan

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
        table = self.table
        read = _listed_read(
            self.conn,
            table,
            id_field,
            "states",
            lambda listed: sa.select(table.c.id, table.c.isdeleted).where(table.c.id.in_(sa.select(listed.c.value))),
        )
        found = read.read(self.conn, {"values": value_list(wanted, id_field, self.conn.dialect)})
        return {str(i): bool(deleted) for i, deleted in found}

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
        required = [(f.key, f.name) for f in writable if f.required]
        for row in rows:
            if row.target is None or seeding:
                row.values = {**defaults, **row.values}
            values = row.values
            for key, name in required:
                if key in values and values[key] in (None, ""):
                    missing = key not in row.names
                    raise row.error(name, "required field missing" if missing else "required field cannot be empty")
        self.check_references(rows)
        self.check_unique(rows)
        result = DmlResult()
        inserts: list[dict[str, Any]] = []  # every field (defaults filled in) and the system fields
        updates: dict[tuple[str, ...], list[dict[str, Any]]] = {}
        fresh = iter(new_record_ids(self.obj.prefix, sum(1 for row in rows if not (row.target or row.id))))
        now = self.now
        for row in rows:
            created = row.target is None
            record_id = row.target or row.id or next(fresh)
            dates = row.dates
            values = row.values  # the row's own dict: completed in place into its parameters
            if created:
                values["id"] = record_id
                values["isdeleted"] = False
                values["createddate"] = dates.get("createddate", now) if dates else now
                values["lastmodifieddate"] = dates.get("lastmodifieddate", now) if dates else now
                inserts.append(values)
            else:
                values["lastmodifieddate"] = dates.get("lastmodifieddate", now) if dates else now
                if "createddate" in dates:
                    values["createddate"] = dates["createddate"]
                group = tuple(sorted(values))
                values["id"] = record_id
                updates.setdefault(group, []).append(values)
            result.ids.append(record_id)
            result.created.append(created)
        for keys, batch in updates.items():
            _bulk(self.conn, self.table, "update", keys).write(self.conn, batch, self.shared())
        if inserts:
            keys = (*defaults, "id", "isdeleted", "createddate", "lastmodifieddate")
            _bulk(self.conn, self.table, "insert", keys).write(self.conn, inserts, self.shared())
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
        table = self.table
        column = table.c[f.key]
        lowered = f.type in TEXT_LIKE

        def select(listed: Any) -> sa.Select[Any]:
            wanted = sa.select(sa.func.lower(listed.c.value) if lowered else listed.c.value)
            key = sa.func.lower(column) if lowered else column
            return sa.select(table.c.id, column).where(key.in_(wanted), table.c.isdeleted == sa.false())

        read = _listed_read(self.conn, table, f, "matches", select)
        found = read.read(self.conn, {"values": value_list(values, f, self.conn.dialect)})
        return {_normal(f, value): str(record_id) for record_id, value in found}

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
            key = f.key
            allowed = {t.lower() for t in f.reference_to}
            for row in rows:
                value = row.values.get(key)
                if value is None:
                    continue
                target = self.schema.by_prefix(value[:3])
                if target is None or target.key not in allowed:
                    raise row.error(f.name, f"{shown(value)} is not the Id of a {' or '.join(f.reference_to)}")
                wanted.setdefault(target, {}).setdefault(value, row)
            for target, by_id in wanted.items():
                present = self.live_ids(target, list(by_id))
                missing = [row for value, row in by_id.items() if value not in present]
                if missing:
                    row = min(missing, key=lambda r: r.index)
                    value = row.values[f.key]
                    raise row.error(f.name, f"no {target.name} with Id {shown(value)}")

    def live_ids(self, obj: ObjectDef, ids: list[str]) -> set[str]:
        """Those of ``ids`` that are live records of ``obj``."""
        table = self.table_of(obj)
        id_field = obj.field("Id")
        assert id_field is not None

        def select(listed: Any) -> sa.Select[Any]:
            wanted = sa.select(listed.c.value)
            return sa.select(table.c.id).where(table.c.id.in_(wanted), table.c.isdeleted == sa.false())

        read = _listed_read(self.conn, table, id_field, "live", select)
        return {str(i) for (i,) in read.read(self.conn, {"values": value_list(ids, id_field, self.conn.dialect)})}

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
