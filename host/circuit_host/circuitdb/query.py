"""SOQL AST to a SQLAlchemy Core select, checked against the tenant's schema.

Every name is resolved to a column of a known table before any SQL exists, and every value
is a bound parameter. Text compares and sorts case-insensitively (as in SOQL), Ids exactly.
Each predicate is two-valued, so ``NOT`` behaves as in SOQL: a null field is ``!=`` every
value and ``NOT IN`` every list. Parent fields (``Account.Name``) become LEFT JOINs and come
back flattened under their dotted name.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, time
from functools import cached_property
from operator import add
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Dialect
from sqlalchemy.sql.elements import ColumnElement
from sqlalchemy.sql.selectable import FromClause

from ..errors import QueryError
from ..soql.parser import (
    MAX_LIKE_PATTERNS_LENGTH,
    And,
    Bind,
    Comparison,
    Condition,
    Constant,
    DateLiteral,
    Field,
    In,
    Includes,
    Like,
    Not,
    Operand,
    Or,
    Position,
    Query,
    Temporal,
    bind_count,
    bind_list,
    bind_scalar,
    check_like_pattern,
    date_range,
    error_at,
)
from .schema import TEXT_LIKE, FieldDef, FieldType, ObjectDef, Schema
from .tables import ROW, text_key, value_table
from .values import ValueProblem, parse_date, parse_datetime, reader, shown, text_out

MAX_RELATIONSHIP_DEPTH = 5


@dataclass(frozen=True)
class Compiled:
    """A select ready to run and how to turn its rows into records."""

    statement: sa.Select[Any]
    count: bool
    columns: tuple[tuple[str, FieldDef], ...]  # (name as selected, definition), in select order
    add_id: bool  # Id was not selected: it is the first column and still returned
    has_like: bool = False  # LIKE or INCLUDES patterns: one step of the statement can take long
    row_cap: int | None = None  # the most rows the select can return

    @cached_property
    def _names(self) -> tuple[str, ...]:
        return (("Id",) if self.add_id else ()) + tuple(name for name, _ in self.columns)

    @cached_property
    def _readers(self) -> tuple[Callable[[Any], Any], ...]:
        return ((_same,) if self.add_id else ()) + tuple(reader(f) for _, f in self.columns)

    @cached_property
    def _keys_floor(self) -> int:
        """``encoded_size_floor`` of a record of this query without its text values: the map and
        its keys (a repeated name is one key), one byte per value."""
        return 1 + sum(2 + len(name) for name in dict.fromkeys(self._names))

    @cached_property
    def _kept(self) -> tuple[tuple[int, bool], ...]:
        """The columns whose values a record keeps (the last of each name) and whether they may hold
        text: a boolean or number field never does."""
        last = {name: i for i, name in enumerate(self._names)}.values()
        textual = ((True,) if self.add_id else ()) + tuple(
            f.type not in (FieldType.BOOLEAN, FieldType.NUMBER) for _, f in self.columns
        )
        return tuple((i, textual[i]) for i in last)

    def records(self, rows: Sequence[Sequence[Any]]) -> tuple[list[dict[str, Any]], list[int]]:
        """The records of a batch of rows and each one's ``encoded_size_floor``, converted column by
        column (a query reads every cell, so the per-value work is one call at most)."""
        if not rows:
            return [], []
        columns = [
            column
            if read is _same or (read is text_out and _STR_OR_NONE.issuperset(map(type, column)))
            else list(map(read, column))
            for read, column in zip(self._readers, zip(*rows, strict=True), strict=True)
        ]
        records = [dict(zip(self._names, values, strict=True)) for values in zip(*columns, strict=True)]
        sizes = [self._keys_floor] * len(rows)
        for i, textual in self._kept:
            column = columns[i]
            if not textual:
                continue
            if _STR.issuperset(map(type, column)):
                sizes = list(map(add, sizes, map(len, column)))
            else:
                sizes = [
                    size + len(value) if isinstance(value, str | bytes) else size
                    for size, value in zip(sizes, column, strict=True)
                ]
        return records, sizes


_STR = frozenset({str})
_STR_OR_NONE = frozenset({str, type(None)})


def _same(value: Any) -> Any:
    return value


def compile_query(
    query: Query,
    schema: Schema,
    table_of: Callable[[ObjectDef], sa.Table],
    binds: Mapping[str, Any],
    max_rows: int,
    dialect: Dialect,
    today: date,
) -> Compiled:
    root = schema.object(query.object_name)
    if root is None:
        raise QueryError(f"unknown object {query.object_name!r}")
    t = _Translator(schema, table_of, root, binds, dialect, today)
    columns = [(f.name, *t.resolve(f)) for f in query.fields]
    where: list[ColumnElement[bool]] = []
    if query.where is not None:
        where.append(t.condition(query.where))
    if query.where is None or not _mentions_is_deleted(query.where):
        where.append(t.table.c.isdeleted == sa.false())
    order = [t.sort_key(key.field, key.descending, key.nulls_first) for key in query.order_by]
    offset = bind_count(binds, query.offset) if query.offset is not None else None
    limit = bind_count(binds, query.limit) if query.limit is not None else None

    if query.count:
        inner = sa.select(sa.literal(1)).select_from(t.source).where(*where).limit(limit).offset(offset)
        statement = sa.select(sa.func.count()).select_from(inner.subquery())
        return Compiled(statement, True, (), False, t.like_length > 0)
    add_id = not any(f.path == ("Id",) or (len(f.path) == 1 and f.path[0].lower() == "id") for f in query.fields)
    selected = ([t.table.c.id] if add_id else []) + [column for _, column, _ in columns]
    capped = max_rows + 1 if limit is None else min(limit, max_rows + 1)
    statement = (
        sa.select(*selected)
        .select_from(t.source)
        .where(*where)
        .order_by(*order, t.table.c[ROW])
        .limit(capped)
        .offset(offset)
    )
    fields = tuple((name, f) for name, _, f in columns)
    return Compiled(statement, False, fields, add_id, t.like_length > 0, capped)


def _mentions_is_deleted(c: Condition) -> bool:
    if isinstance(c, And | Or):
        return any(_mentions_is_deleted(operand) for operand in c.operands)
    if isinstance(c, Not):
        return _mentions_is_deleted(c.operand)
    return c.field.path[0].lower() == "isdeleted" and len(c.field.path) == 1


class _Translator:
    def __init__(
        self,
        schema: Schema,
        table_of: Callable[[ObjectDef], sa.Table],
        root: ObjectDef,
        binds: Mapping[str, Any],
        dialect: Dialect,
        today: date,
    ) -> None:
        self.schema = schema
        self.table_of = table_of
        self.root = root
        self.table = table_of(root)
        self.source: FromClause = self.table
        self.joins: dict[tuple[str, ...], tuple[FromClause, ObjectDef]] = {}
        self.binds = binds
        self.dialect = dialect
        self.today = today
        self.like_length = 0  # characters in the query's LIKE patterns so far

    # --- names -----------------------------------------------------------------------------

    def resolve(self, f: Field) -> tuple[ColumnElement[Any], FieldDef]:
        """The column and definition of a (possibly dotted) field, joining parents as needed."""
        if len(f.path) - 1 > MAX_RELATIONSHIP_DEPTH:
            raise error_at(f.pos, f"{f.name}: at most {MAX_RELATIONSHIP_DEPTH} relationship levels")
        table: FromClause = self.table
        obj = self.root
        walked: tuple[str, ...] = ()
        for part in f.path[:-1]:
            ref = obj.reference(part)
            if ref is None:
                plain = obj.field(part)
                if plain is not None:
                    raise error_at(f.pos, f"{part} on {obj.name} is not a relationship; did you mean {part}Id?")
                raise error_at(f.pos, f"unknown relationship {part!r} on {obj.name}")
            if len(ref.reference_to) != 1:
                raise error_at(f.pos, f"{part} on {obj.name} is polymorphic and cannot be traversed; select {ref.name}")
            target = self.schema.object(ref.reference_to[0])
            if target is None:
                raise error_at(f.pos, f"{ref.name} on {obj.name} references unknown object {ref.reference_to[0]}")
            walked = (*walked, part.lower())
            if walked not in self.joins:
                alias = self.table_of(target).alias(f"p{len(self.joins) + 1}")
                self.source = self.source.outerjoin(alias, alias.c.id == table.c[ref.key])
                self.joins[walked] = (alias, target)
            table, obj = self.joins[walked]
        definition = obj.field(f.path[-1])
        if definition is None:
            raise error_at(f.pos, f"no field {f.path[-1]!r} on {obj.name}")
        return table.c[definition.key], definition

    def sort_key(self, f: Field, descending: bool, nulls_first: bool) -> ColumnElement[Any]:
        column, definition = self.resolve(f)
        if definition.type is FieldType.JSON or definition.multi:
            raise error_at(f.pos, f"cannot order by {f.name}: a {_kind(definition)} field")
        expr = self.key(column, definition)
        ordered = expr.desc() if descending else expr.asc()
        return ordered.nulls_first() if nulls_first else ordered.nulls_last()

    def key(self, column: ColumnElement[Any], f: FieldDef) -> ColumnElement[Any]:
        """The expression a field compares and sorts by."""
        if f.type in TEXT_LIKE:
            return text_key(column, self.dialect)
        if f.type is FieldType.BOOLEAN:
            return sa.func.coalesce(column, sa.false())
        return column

    def bound(self, value: Any, f: FieldDef, column: ColumnElement[Any]) -> ColumnElement[Any]:
        if f.type in TEXT_LIKE:
            return text_key(sa.bindparam(None, value, type_=sa.Text()), self.dialect)
        if f.type is FieldType.NUMBER:
            return sa.bindparam(None, value, type_=sa.BigInteger() if isinstance(value, int) else sa.Double())
        return sa.bindparam(None, value, type_=column.type)

    # --- conditions ------------------------------------------------------------------------

    def condition(self, c: Condition) -> ColumnElement[bool]:
        if isinstance(c, And):
            return sa.and_(*(self.condition(operand) for operand in c.operands))
        if isinstance(c, Or):
            return sa.or_(*(self.condition(operand) for operand in c.operands))
        if isinstance(c, Not):
            return sa.not_(self.condition(c.operand))
        column, f = self.resolve(c.field)
        if f.type is FieldType.JSON:
            raise error_at(c.field.pos, f"cannot filter on {c.field.name}: a json field")
        if isinstance(c, Comparison):
            return self.comparison(c, column, f)
        if isinstance(c, Like):
            return self.like(c, column, f)
        if isinstance(c, In):
            return self.in_list(c, column, f)
        return self.includes(c, column, f)

    def comparison(self, c: Comparison, column: ColumnElement[Any], f: FieldDef) -> ColumnElement[bool]:
        if isinstance(c.value, DateLiteral):
            return self.date_range(c, column, f, c.value)
        value = self.value(c.value, f, c.field)
        if value is None:
            if c.op not in ("=", "!="):
                raise error_at(c.value.pos, f"NULL can only be compared with = or !=, not {c.op}")
            if f.type is FieldType.BOOLEAN:
                return sa.false() if c.op == "=" else sa.true()  # a checkbox is never null
            return column.is_(None) if c.op == "=" else column.is_not(None)
        if c.op in ("<", "<=", ">", ">=") and f.type is FieldType.BOOLEAN:
            raise error_at(c.value.pos, f"{c.field.name} is a boolean field; it can only be compared with = or !=")
        left, right = self.key(column, f), self.bound(value, f, column)
        if c.op == "!=":
            return sa.or_(column.is_(None), left != right)
        compared = {"=": left == right, "<": left < right, "<=": left <= right, ">": left > right, ">=": left >= right}
        return sa.and_(column.is_not(None), compared[c.op])

    def date_range(
        self, c: Comparison, column: ColumnElement[Any], f: FieldDef, literal: DateLiteral
    ) -> ColumnElement[bool]:
        if f.type not in (FieldType.DATE, FieldType.DATETIME):
            raise error_at(literal.pos, f"{literal.name} is a date literal; {c.field.name} is a {_kind(f)} field")
        first, after = date_range(literal, self.today)
        start: date | datetime = first
        end: date | datetime = after
        if f.type is FieldType.DATETIME:
            start, end = datetime.combine(first, time(), UTC), datetime.combine(after, time(), UTC)
        lo = sa.bindparam(None, start, type_=column.type)
        hi = sa.bindparam(None, end, type_=column.type)
        if c.op == "!=":
            return sa.or_(column.is_(None), column < lo, column >= hi)
        ranges = {
            "=": sa.and_(column >= lo, column < hi),
            "<": column < lo,
            "<=": column < hi,
            ">": column >= hi,
            ">=": column >= lo,
        }
        return sa.and_(column.is_not(None), ranges[c.op])

    def like(self, c: Like, column: ColumnElement[Any], f: FieldDef) -> ColumnElement[bool]:
        if f.type not in TEXT_LIKE:
            raise error_at(c.field.pos, f"LIKE needs a text field; {c.field.name} is a {_kind(f)} field")
        pattern = self.scalar(c.pattern)
        if not isinstance(pattern, str):
            raise error_at(c.pattern.pos, "LIKE needs a string pattern")
        check_like_pattern(pattern, c.pattern.pos)  # a bind's value is known only now
        self.charge_like(pattern, c.pattern.pos)
        bound = text_key(sa.bindparam(None, pattern, type_=sa.Text()), self.dialect)
        return sa.and_(column.is_not(None), text_key(column, self.dialect).like(bound, escape="\\"))

    def in_list(self, c: In, column: ColumnElement[Any], f: FieldDef) -> ColumnElement[bool]:
        if isinstance(c.values, Bind):
            given = bind_list(self.binds, c.values)
            if f.type in _STRING_TYPES and _STR.issuperset(map(type, given)):
                values: list[Any] = given  # what ``checked`` would return, without a call per value
            else:
                values = [self.checked(v, f, c.field, c.values.pos, from_bind=True) for v in given]
        else:
            values = [self.value(v, f, c.field) for v in c.values]
        present = [v for v in values if v is not None]
        parts: list[ColumnElement[bool]] = []
        if present:
            table = value_table(present, f, self.dialect)
            listed = sa.select(self.key(table.c.value, f) if f.type in TEXT_LIKE else table.c.value)
            parts.append(sa.and_(column.is_not(None), self.key(column, f).in_(listed)))
        if len(present) < len(values):
            parts.append(sa.false() if f.type is FieldType.BOOLEAN else column.is_(None))
        matched = sa.or_(*parts) if parts else sa.false()
        return sa.not_(matched) if c.negated else matched

    def includes(self, c: Includes, column: ColumnElement[Any], f: FieldDef) -> ColumnElement[bool]:
        word = "EXCLUDES" if c.negated else "INCLUDES"
        if not (f.type is FieldType.PICKLIST and f.multi):
            raise error_at(c.field.pos, f"{word} needs a multi-select picklist; {c.field.name} is a {_kind(f)} field")
        if isinstance(c.values, Bind):
            raw = self.binds.get(c.values.name)
            items = bind_list(self.binds, c.values) if isinstance(raw, list | tuple) else [self.scalar(c.values)]
            pos = c.values.pos
        else:
            items = [v.value for v in c.values]
            pos = c.values[0].pos if c.values else c.field.pos
        wrapped = sa.literal(";", type_=sa.Text()) + sa.func.lower(column) + sa.literal(";", type_=sa.Text())
        sets: list[ColumnElement[bool]] = []
        for item in items:
            if not isinstance(item, str):
                raise error_at(pos, f"{word} needs string values, found {shown(item)}")
            terms = [term.strip() for term in item.split(";") if term.strip()]
            if not terms:
                continue
            for term in terms:  # each term is a LIKE too, and a bind list can hold any number
                self.charge_like(term, pos)
            sets.append(
                sa.and_(
                    *(
                        wrapped.like(sa.func.lower(sa.bindparam(None, "%;" + _escape_like(t) + ";%")), escape="\\")
                        for t in terms
                    )
                )
            )
        matched = sa.and_(column.is_not(None), sa.or_(*sets)) if sets else sa.false()
        return sa.not_(matched) if c.negated else matched

    def charge_like(self, pattern: str, pos: Position) -> None:
        """Count ``pattern`` against the query's LIKE budget (``MAX_LIKE_PATTERNS_LENGTH``)."""
        self.like_length += len(pattern)
        if self.like_length > MAX_LIKE_PATTERNS_LENGTH:
            raise error_at(pos, f"the query's LIKE patterns total over {MAX_LIKE_PATTERNS_LENGTH} characters")

    # --- values ----------------------------------------------------------------------------

    def scalar(self, operand: Operand) -> Any:
        if isinstance(operand, Bind):
            return bind_scalar(self.binds, operand)
        if isinstance(operand, Constant | Temporal):
            return operand.value
        raise error_at(operand.pos, f"{operand.name} is a date literal; a value is expected here")

    def value(self, operand: Operand | Constant | Temporal, f: FieldDef, field: Field) -> Any:
        if isinstance(operand, DateLiteral):
            raise error_at(operand.pos, f"{operand.name} cannot be used here")
        return self.checked(self.scalar(operand), f, field, operand.pos, from_bind=isinstance(operand, Bind))

    def checked(self, value: Any, f: FieldDef, field: Field, pos: Position, *, from_bind: bool) -> Any:
        """``value`` as the field's column type, or a QueryError saying why it cannot be compared."""
        if value is None:
            return None
        t = f.type
        ok: bool
        if t in _STRING_TYPES:
            ok = isinstance(value, str)
        elif t is FieldType.NUMBER:
            ok = isinstance(value, int | float) and not isinstance(value, bool)
        elif t is FieldType.BOOLEAN:
            ok = isinstance(value, bool)
        elif t is FieldType.DATE:
            if isinstance(value, str) and from_bind:
                value = self.parsed(parse_date, value, pos)
            ok = isinstance(value, date) and not isinstance(value, datetime)
        else:  # DATETIME
            if isinstance(value, str) and from_bind:
                value = self.parsed(parse_datetime, value, pos)
            ok = isinstance(value, datetime)
        if not ok:
            raise error_at(pos, f"{field.name} is a {_kind(f)} field; it cannot be compared with {_describe(value)}")
        return value

    def parsed(self, parse: Callable[[str], Any], text: str, pos: Position) -> Any:
        try:
            return parse(text)
        except ValueProblem as e:
            raise error_at(pos, str(e)) from None


_STRING_TYPES = frozenset((*TEXT_LIKE, FieldType.ID, FieldType.REFERENCE))  # ``checked`` takes any str as is


def _escape_like(text: str) -> str:
    return text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")


def _kind(f: FieldDef) -> str:
    if f.type is FieldType.PICKLIST and f.multi:
        return "multi-select picklist"
    return str(f.type)


def _describe(value: Any) -> str:
    if isinstance(value, bool):
        return "TRUE" if value else "FALSE"
    if isinstance(value, datetime):
        return f"datetime {value.isoformat()}"
    if isinstance(value, date):
        return f"date {value.isoformat()}"
    if isinstance(value, str):
        return f"string {shown(value)}"
    return f"number {value!r}"
