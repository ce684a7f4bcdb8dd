"""Table layout and everything that differs between SQLite and PostgreSQL.

Each (tenant, object) has its own table ``cdb_<tenant hash>_<object>`` with one typed column
per field, named by the field's lower-cased name, plus ``_row`` (an autoincrement key that
gives insertion order). Tenants never share a record table; ``circuitdb_schema`` holds every
tenant's custom definitions, one row per (tenant, object, field). Every name in DDL comes
from a validated definition and is quoted by SQLAlchemy; values are always bound.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Sequence
from datetime import UTC, date, datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql
from sqlalchemy.engine import Connection, Dialect
from sqlalchemy.sql.elements import ColumnElement
from sqlalchemy.types import TypeDecorator, TypeEngine

from .schema import TEXT_LIKE, FieldDef, FieldType, ObjectDef

ROW = "_row"
SCHEMA_TABLE = "circuitdb_schema"
_MIGRATION_LOCK = 0x43495243  # "CIRC": with a tenant's hash, the PostgreSQL advisory lock of its migrations

_metadata = sa.MetaData()
schema_table = sa.Table(
    SCHEMA_TABLE,
    _metadata,
    sa.Column("tenant", sa.String(200), primary_key=True),
    sa.Column("object", sa.String(64), primary_key=True),
    sa.Column("field", sa.String(64), primary_key=True),  # "" for the object itself
    sa.Column("definition", sa.Text, nullable=False),  # JSON
)
RECEIPTS_TABLE = "circuitdb_receipts"
receipts_table = sa.Table(
    RECEIPTS_TABLE,
    _metadata,
    sa.Column("tenant", sa.String(200), primary_key=True),
    sa.Column("key", sa.String(200), primary_key=True),  # e.g. ``inbox:<id>``: work applied from outside
    sa.Column("recorded_at", sa.DateTime, nullable=False),
)
JOB_OUTBOX_TABLE = "circuitdb_job_outbox"
job_outbox_table = sa.Table(
    JOB_OUTBOX_TABLE,
    _metadata,
    sa.Column("tenant", sa.String(200), primary_key=True),
    sa.Column("key", sa.String(200), primary_key=True),  # the job's idempotency key, ``exec:<execution id>:<n>``
    sa.Column("circuit", sa.String(64), nullable=False),
    sa.Column("payload", sa.Text, nullable=False),  # JSON: the job's payload
    sa.Column("recorded_at", sa.DateTime, nullable=False),
)


class UtcDateTime(TypeDecorator[datetime]):
    """``timestamptz`` on PostgreSQL; naive UTC text on SQLite. Always aware UTC in Python."""

    impl = sa.DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        value = value.astimezone(UTC) if value.tzinfo else value
        return value.replace(tzinfo=None) if dialect.name == "sqlite" else value.replace(tzinfo=UTC)

    def process_result_value(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


def tenant_prefix(tenant: str) -> str:
    """The prefix of every table of ``tenant``: ``cdb_`` and 10 hex digits of its hash."""
    return "cdb_" + hashlib.sha256(tenant.encode()).hexdigest()[:10] + "_"


def table_name(tenant: str, obj: ObjectDef) -> str:
    return tenant_prefix(tenant) + obj.key  # at most 15 + 41 characters: inside PostgreSQL's 63


def _index_name(table: str, what: str) -> str:
    return "cdbx_" + hashlib.sha256(f"{table}.{what}".encode()).hexdigest()[:24]


def column_type(f: FieldDef) -> TypeEngine[Any]:
    if f.type is FieldType.ID:
        return sa.String(18)
    if f.type is FieldType.NUMBER:
        return sa.BigInteger() if f.scale == 0 else sa.Double()
    if f.type is FieldType.BOOLEAN:
        return sa.Boolean(create_constraint=False)
    if f.type is FieldType.DATE:
        return sa.Date()
    if f.type is FieldType.DATETIME:
        return UtcDateTime()
    if f.type is FieldType.JSON:
        return sa.JSON(none_as_null=True).with_variant(postgresql.JSONB(none_as_null=True), "postgresql")
    return sa.Text()


def build_table(tenant: str, obj: ObjectDef) -> sa.Table:
    """The SQLAlchemy table of ``obj``, with its indexes; each gets its own MetaData."""
    table = sa.Table(
        table_name(tenant, obj),
        sa.MetaData(),
        sa.Column(ROW, sa.BigInteger().with_variant(sa.Integer(), "sqlite"), primary_key=True, autoincrement=True),
    )
    for f in obj.fields:
        table.append_column(sa.Column(f.key, column_type(f), nullable=f.key not in ("id", "isdeleted")))
    for f in obj.fields:
        field_indexes(table, f)
    return table


def field_indexes(table: sa.Table, f: FieldDef) -> list[sa.Index]:
    """The indexes ``f`` needs (created with the table or when the field is added)."""
    column = table.c[f.key]
    if f.key == "id":
        return [sa.Index(_index_name(table.name, "id"), column, unique=True)]
    if f.is_unique:
        live = table.c.isdeleted == sa.false()
        expr = sa.func.lower(column) if f.type in TEXT_LIKE else column
        index = sa.Index(_index_name(table.name, f.key), expr, unique=True, sqlite_where=live, postgresql_where=live)
        return [index]
    if f.type is FieldType.REFERENCE:
        return [sa.Index(_index_name(table.name, f.key), column)]
    return []


# --- migrations --------------------------------------------------------------------------


def begin_migration(conn: Connection, tenant: str) -> None:
    """Start a migration of ``tenant``'s tables, holding the lock other processes wait on.

    On PostgreSQL the lock is the tenant's own, so one tenant's long schema change never holds up
    another's (nor the opening of its store, which migrates too). On SQLite it is the file's write lock.
    """
    if conn.dialect.name == "sqlite":
        conn.exec_driver_sql("BEGIN IMMEDIATE")
    else:
        conn.exec_driver_sql("BEGIN")
        tenant_key = int.from_bytes(hashlib.sha256(tenant.encode()).digest()[:4], "big", signed=True)
        keys = (sa.cast(sa.literal(k), sa.Integer) for k in (_MIGRATION_LOCK, tenant_key))
        conn.execute(sa.select(sa.func.pg_advisory_xact_lock(*keys)))


def existing_columns(conn: Connection, prefix: str) -> dict[str, set[str]]:
    """The columns of every table whose name starts with ``prefix``."""
    if conn.dialect.name == "sqlite":
        sql = sa.text(
            "SELECT m.name, p.name FROM sqlite_master AS m JOIN pragma_table_info(m.name) AS p "
            "WHERE m.type = 'table' AND substr(m.name, 1, :n) = :prefix"
        )
    else:
        sql = sa.text(
            "SELECT table_name, column_name FROM information_schema.columns "
            "WHERE table_schema = current_schema() AND substr(table_name, 1, :n) = :prefix"
        )
    found: dict[str, set[str]] = {}
    for table, column in conn.execute(sql, {"n": len(prefix), "prefix": prefix}):
        found.setdefault(str(table), set()).add(str(column))
    return found


def add_column(conn: Connection, table: sa.Table, f: FieldDef) -> None:
    column = table.c[f.key]
    preparer = conn.dialect.identifier_preparer
    spec = sa.schema.CreateColumn(column).compile(dialect=conn.dialect)
    conn.exec_driver_sql(f"ALTER TABLE {preparer.format_table(table)} ADD COLUMN {spec}")
    for index in field_indexes(table, f):
        index.create(conn)


def drop_table(conn: Connection, name: str) -> None:
    conn.exec_driver_sql(f"DROP TABLE IF EXISTS {conn.dialect.identifier_preparer.quote(name)}")


# --- query pieces that differ by dialect -------------------------------------------------


def text_key(expr: ColumnElement[Any], dialect: Dialect) -> ColumnElement[Any]:
    """Text as SOQL compares and sorts it: case-insensitively, and byte-wise on both dialects."""
    lowered = sa.func.lower(expr)
    return lowered.collate("C") if dialect.name == "postgresql" else lowered


def value_table(values: Sequence[Any], f: FieldDef, dialect: Dialect) -> sa.TableValuedAlias:
    """A one-column (``value``) table of bound values: any number of them in one parameter."""
    parameter = sa.bindparam(None, value_list(values, f, dialect), type_=value_list_type(f, dialect))
    return value_table_of(parameter, dialect)


def value_table_of(parameter: sa.BindParameter[Any], dialect: Dialect) -> sa.TableValuedAlias:
    """``value_table`` over a parameter of ``value_list_type`` (named, for SQL compiled once and
    bound to ``value_list`` at each run)."""
    if dialect.name == "sqlite":
        return sa.func.json_each(parameter).table_valued("value")
    return sa.func.unnest(parameter).table_valued("value").render_derived()


def value_list_type(f: FieldDef, dialect: Dialect) -> TypeEngine[Any]:
    """The type of the one parameter holding a list of values of field ``f``."""
    if dialect.name == "sqlite":
        return sa.Text()
    element: TypeEngine[Any] = sa.Text()
    if f.type is FieldType.NUMBER:
        element = sa.Double()
    elif f.type is FieldType.DATETIME:
        element = sa.DateTime(timezone=True)
    elif f.type in (FieldType.BOOLEAN, FieldType.DATE):
        element = column_type(f)
    return postgresql.ARRAY(element)


def value_list(values: Sequence[Any], f: FieldDef, dialect: Dialect) -> Any:
    """``values`` as the one parameter of ``value_table``: JSON text on SQLite, an array on PostgreSQL."""
    if dialect.name == "sqlite":
        if set(map(type, values)) == {str}:  # Ids and text: JSON as they are
            return json.dumps(values if isinstance(values, list) else list(values))
        return json.dumps([_sqlite_json(v) for v in values])
    if f.type is FieldType.NUMBER:
        return [float(v) for v in values]  # psycopg refuses a list mixing int and float
    return list(values)


def _sqlite_json(value: Any) -> Any:
    if isinstance(value, datetime):
        return value.astimezone(UTC).replace(tzinfo=None).isoformat(sep=" ", timespec="microseconds")
    if isinstance(value, date):
        return value.isoformat()
    return value
