"""CircuitDB: the records connector over SQLAlchemy Core, on SQLite or PostgreSQL.

One ``CircuitDB`` serves one tenant. ``begin()`` hands out a transaction with its own
connection, usable from any thread (one transaction per thread). Transactions are driven
with explicit ``BEGIN`` / ``SAVEPOINT`` / ``COMMIT`` on connections in driver autocommit
mode, the same statements on both dialects, except that on SQLite a transaction reads from
a snapshot until its first write and then takes the database's write lock (``BEGIN
IMMEDIATE``, waiting up to ``busy_timeout``), so that writers queue instead of failing.
PostgreSQL transactions are READ COMMITTED.

Schema changes (``apply_schema``) run in their own transaction under a lock: ``BEGIN
IMMEDIATE`` on SQLite, an advisory lock on PostgreSQL, so processes sharing a database can
migrate concurrently. A store that meets a name it does not know reloads the tenant's
definitions once, in case another process added it.
"""

from __future__ import annotations

import json
import os
import secrets
import tempfile
import threading
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import AbstractContextManager, contextmanager, nullcontext
from dataclasses import dataclass, field
from datetime import UTC, datetime
from functools import lru_cache
from itertools import accumulate
from pathlib import Path
from types import TracebackType
from typing import Any, Literal, TypeVar

import sqlalchemy as sa
import structlog
from sqlalchemy.engine import Connection, Engine

from ..connectors.records import DmlOp, DmlResult, QueryResult, QueryTimeout, QueryTooLarge
from ..errors import CircuitError, DmlError, QueryError, Rejected
from ..migrations import circuitdb_definitions, upgrade
from ..soql.parser import IDENTIFIER, Query, parse
from ..storage_engine import acquire_engine, make_engine, release_engine
from .cancel_watchdog import WATCHDOG, Armed
from .database_errors import translated
from .dml import Statement, UnknownField
from .field_checks import check_field
from .query import compile_query
from .schema import (
    CUSTOM_BASE_FIELDS,
    STANDARD_OBJECTS,
    SYSTEM_KEYS,
    FieldDef,
    ObjectDef,
    Schema,
    SchemaLimits,
    check_custom_name,
    custom_object,
    incompatible_change,
    record_id_prefix,
)
from .tables import (
    JOB_OUTBOX_TABLE,
    RECEIPTS_TABLE,
    SCHEMA_TABLE,
    add_column,
    begin_migration,
    build_table,
    drop_table,
    existing_columns,
    job_outbox_table,
    receipts_table,
    schema_table,
    table_name,
    tenant_prefix,
    value_table,
)
from .values import from_storage, now, shown

MAX_TENANT_LENGTH = 200
_DROP_BATCH = 200
_STANDARD = {o.key: o for o in STANDARD_OBJECTS}
_CUSTOM_BASE = {f.key: f for f in CUSTOM_BASE_FIELDS}
_T = TypeVar("_T")
_PROGRESS_STEPS = 100  # SQLite VM steps between deadline checks of a statement
_PROGRESS_STEPS_LIKE = 2  # the same for a query with LIKE patterns, where one step can take many ms
_FETCH_BATCH = 500  # rows fetched at a time (PostgreSQL: a server-side cursor), so a large result stops early
_PARSED_LENGTH = 2_000  # queries up to this long are parsed once per process (``_parsed``)
log = structlog.get_logger("circuit.circuitdb")


@lru_cache(maxsize=256)
def _parsed(soql: str) -> Query:
    """A circuit runs the same few query texts again and again; a parsed ``Query`` is immutable."""
    return parse(soql)


@dataclass(frozen=True)
class SchemaChanges:
    """Custom objects to create (or extend) and custom fields to add, e.g. from a manifest."""

    objects: tuple[ObjectDef, ...] = ()
    fields: tuple[tuple[str, FieldDef], ...] = ()  # (object name, field)


@dataclass
class _Stored:
    """A tenant's custom definitions as persisted: objects and fields by lower-cased name."""

    objects: dict[str, dict[str, str]] = field(default_factory=dict)  # key -> name, label, prefix
    fields: dict[tuple[str, str], FieldDef] = field(default_factory=dict)

    def schema(self) -> Schema:
        """The registry these definitions make; one pass over them (fields in key order per object)."""
        objects = dict(_STANDARD)
        for key, meta in self.objects.items():
            objects[key] = custom_object(meta["name"], meta["prefix"], meta.get("label", ""))
        added: dict[str, list[FieldDef]] = {}
        for (object_key, _), f in sorted(self.fields.items()):
            added.setdefault(object_key, []).append(f)
        for object_key, fields in added.items():
            if object_key in objects:
                objects[object_key] = objects[object_key].with_fields(fields)
        return Schema(objects.values())

    def object_name(self, key: str) -> str | None:
        """The declared name of a standard or custom object, None if there is none."""
        standard = _STANDARD.get(key)
        if standard is not None:
            return standard.name
        meta = self.objects.get(key)
        return meta["name"] if meta is not None else None

    def current_field(self, object_key: str, field_key: str) -> FieldDef | None:
        """A field as these definitions have it, without building the object (a merge asks per field)."""
        found = self.fields.get((object_key, field_key))
        if found is not None:
            return found
        standard = _STANDARD.get(object_key)
        return standard.field(field_key) if standard is not None else _CUSTOM_BASE.get(field_key)

    def custom_field_counts(self) -> dict[str, int]:
        """Per object key, how many ``__c`` fields it has."""
        counts: dict[str, int] = {}
        for object_key, field_key in self.fields:
            if field_key.endswith("__c"):
                counts[object_key] = counts.get(object_key, 0) + 1
        return counts


class _Catalog:
    """A schema snapshot and its tables; replaced whole when the schema changes.

    The tables of objects that ``previous`` has unchanged are taken over from it: a change to one
    object builds one table, however many the tenant has.
    """

    def __init__(self, tenant: str, stored: _Stored, previous: _Catalog | None = None) -> None:
        self.stored = stored
        self.schema = stored.schema()
        self.tables: dict[str, sa.Table] = {}
        for o in self.schema.objects:
            before = previous.schema.object(o.key) if previous is not None else None
            reused = before is not None and before == o
            self.tables[o.key] = previous.tables[o.key] if previous is not None and reused else build_table(tenant, o)

    def table(self, obj: ObjectDef) -> sa.Table:
        return self.tables[obj.key]


def open_store(
    target: str | Path | None, tenant: str = "default", *, schema_limits: SchemaLimits | None = None
) -> CircuitDB:
    """A store on a SQLite path, a ``sqlite:///`` or ``postgresql://`` URL, or (None) a temporary SQLite file."""
    limits = schema_limits or SchemaLimits()
    if target is None:
        fd, name = tempfile.mkstemp(prefix="circuitdb-", suffix=".sqlite3")
        os.close(fd)
        return CircuitDB(f"sqlite:///{name}", tenant, schema_limits=limits, _temporary=Path(name))
    if isinstance(target, Path) or "://" not in target:
        return CircuitDB(f"sqlite:///{Path(target)}", tenant, schema_limits=limits)
    return CircuitDB(target, tenant, schema_limits=limits)


class CircuitDB:
    """A tenant's typed records store; see the module docstring."""

    def __init__(
        self,
        url: str,
        tenant: str = "default",
        *,
        busy_timeout: float = 30.0,
        schema_limits: SchemaLimits | None = None,
        _temporary: Path | None = None,
    ) -> None:
        if not isinstance(tenant, str) or not tenant or len(tenant) > MAX_TENANT_LENGTH:
            raise Rejected(f"tenant must be a non-empty string of at most {MAX_TENANT_LENGTH} characters")
        self.tenant = tenant
        self.schema_limits = schema_limits or SchemaLimits()
        self._temporary = _temporary
        self._closed = False
        self._lock = threading.Lock()
        self.engine: Engine = acquire_engine(url, busy_timeout=busy_timeout)  # shared on PostgreSQL
        self.dialect = self.engine.dialect.name
        try:
            upgrade(self.engine, circuitdb_definitions())  # record tables follow the definitions below
            self._catalog = self._migrate(SchemaChanges(), self.schema_limits, None)
        except BaseException:
            release_engine(self.engine)
            raise

    # --- lifecycle -------------------------------------------------------------------------

    def begin(self, receipts: Sequence[str] = ()) -> CircuitTransaction:
        """A transaction; ``receipts`` (host only): keys of outside work it applies, recorded by its
        commit, which fails (``AlreadyApplied``) if any was recorded before (see ``receipts``)."""
        if self._closed:
            raise RuntimeError("records store is closed")
        return CircuitTransaction(self, self.engine.connect(), receipts)

    def receipts(self, keys: Sequence[str]) -> set[str]:
        """Those of ``keys`` a committed transaction recorded: that work is in the records already."""
        r = receipts_table.c
        found: set[str] = set()
        with self.engine.connect() as conn:
            for start in range(0, len(keys), 500):
                chunk = list(keys[start : start + 500])
                found.update(conn.execute(sa.select(r.key).where(r.tenant == self.tenant, r.key.in_(chunk))).scalars())
        return found

    def outbox_jobs(self, limit: int = 500) -> list[OutboxJob]:
        """The oldest jobs committed into the job outbox and not yet forgotten (the relay's batch)."""
        o = job_outbox_table.c
        query = sa.select(o.key, o.circuit, o.payload).where(o.tenant == self.tenant)
        with self.engine.connect() as conn:
            rows = conn.execute(query.order_by(o.recorded_at, o.key).limit(limit)).all()
        return [OutboxJob(row.key, row.circuit, json.loads(row.payload)) for row in rows]

    def forget_outbox_jobs(self, keys: Sequence[str]) -> None:
        """Delete job outbox rows whose jobs are on the queue."""
        o = job_outbox_table.c
        with self.engine.connect() as conn:
            for start in range(0, len(keys), 500):
                chunk = list(keys[start : start + 500])
                conn.execute(job_outbox_table.delete().where(o.tenant == self.tenant, o.key.in_(chunk)))

    def close(self) -> None:
        if self._closed:
            return
        self._closed = True
        release_engine(self.engine)
        if self._temporary is not None:
            for suffix in ("", "-wal", "-shm"):
                Path(f"{self._temporary}{suffix}").unlink(missing_ok=True)

    def __enter__(self) -> CircuitDB:
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()

    @property
    def path(self) -> Path | None:
        """The SQLite file, if the store is one."""
        database = self.engine.url.database
        return Path(database) if self.dialect == "sqlite" and database else None

    # --- schema ----------------------------------------------------------------------------

    @property
    def schema(self) -> Schema:
        return self._catalog.schema

    def table_name(self, object_name: str) -> str:
        obj = self.schema.object(object_name)
        if obj is None:
            raise KeyError(object_name)
        return table_name(self.tenant, obj)

    def apply_schema(self, changes: SchemaChanges, limits: SchemaLimits | None = None) -> None:
        """Create custom objects and add custom fields, migrating the tables; idempotent.

        ``Rejected`` names the definition that is invalid or incompatible with what exists, or the
        limit (``limits``, else the store's ``schema_limits``) the change would pass; then nothing
        changes. The work is linear in the number of definitions.
        """
        if self._closed:
            raise RuntimeError("records store is closed")
        self._catalog = self._migrate(changes, limits or self.schema_limits, self._catalog)

    def define_object(self, name: str, *, label: str = "", fields: Sequence[FieldDef] = ()) -> None:
        self.apply_schema(SchemaChanges(objects=(custom_object(name, "", label, fields),)))

    def add_field(self, object_name: str, definition: FieldDef) -> None:
        self.apply_schema(SchemaChanges(fields=((object_name, definition),)))

    def refresh(self) -> bool:
        """Reload the tenant's definitions (another process may have migrated); True if they changed."""
        with self._lock, self.engine.connect() as conn:
            stored = _load(conn, self.tenant)
            conn.rollback()
        if stored == self._catalog.stored:
            return False
        self._catalog = _Catalog(self.tenant, stored, self._catalog)
        return True

    def drop_tenant(self) -> None:
        """Drop every table and definition of this tenant; the store is closed afterwards."""
        with self._lock:
            drop_tenant(self.engine, self.tenant)
        self.close()

    def _migrate(self, changes: SchemaChanges, limits: SchemaLimits, previous: _Catalog | None) -> _Catalog:
        with self._lock, self.engine.connect() as conn:
            begin_migration(conn, self.tenant)
            try:
                stored = _load(conn, self.tenant)
                rows = _merge(stored, changes, limits)
                if rows:
                    c = schema_table.c
                    keys = [{"t": self.tenant, "o": o, "f": f} for o, f, _ in rows]
                    mine = (c.tenant == sa.bindparam("t"), c.object == sa.bindparam("o"), c.field == sa.bindparam("f"))
                    conn.execute(schema_table.delete().where(*mine), keys)
                    conn.execute(
                        schema_table.insert(),
                        [
                            {"tenant": self.tenant, "object": o, "field": f, "definition": json.dumps(d)}
                            for o, f, d in rows
                        ],
                    )
                catalog = _Catalog(self.tenant, stored, previous)
                existing = existing_columns(conn, tenant_prefix(self.tenant))
                for obj in catalog.schema.objects:
                    table = catalog.table(obj)
                    if table.name not in existing:
                        table.create(conn)
                        continue
                    for f in obj.fields:
                        if f.key not in existing[table.name]:
                            add_column(conn, table, f)
                conn.exec_driver_sql("COMMIT")
            except BaseException:
                conn.exec_driver_sql("ROLLBACK")
                raise
        return catalog


def drop_tenant(engine: Engine, tenant: str) -> None:
    """Drop every table and definition of ``tenant`` in the database of ``engine``.

    Tables go ``_DROP_BATCH`` to a transaction (PostgreSQL locks each dropped table, its indexes
    and TOAST table until commit, and has room for a few thousand locks); the definitions last.
    """
    with engine.connect() as conn:
        names = sorted(existing_columns(conn, tenant_prefix(tenant)))
        for start in range(0, max(len(names), 1), _DROP_BATCH):
            begin_migration(conn, tenant)
            try:
                for name in names[start : start + _DROP_BATCH]:
                    drop_table(conn, name)
                if start + _DROP_BATCH >= len(names) and sa.inspect(conn).has_table(SCHEMA_TABLE):
                    conn.execute(schema_table.delete().where(schema_table.c.tenant == tenant))
                if start + _DROP_BATCH >= len(names) and sa.inspect(conn).has_table(RECEIPTS_TABLE):
                    conn.execute(receipts_table.delete().where(receipts_table.c.tenant == tenant))
                if start + _DROP_BATCH >= len(names) and sa.inspect(conn).has_table(JOB_OUTBOX_TABLE):
                    conn.execute(job_outbox_table.delete().where(job_outbox_table.c.tenant == tenant))
                conn.exec_driver_sql("COMMIT")
            except BaseException:
                conn.exec_driver_sql("ROLLBACK")
                raise


def copy_tenant(source: Path, target: Path, tenant: str) -> bool:
    """Copy ``tenant``'s tables (DDL, indexes, rows) and definitions from the SQLite file ``source``
    into a new SQLite file ``target``, verbatim; False, changing nothing, if ``target`` exists.

    ``target`` appears whole or not at all: it is written under a temporary name in its folder and
    hard-linked into place, which fails rather than replace a file another process made meanwhile.
    """
    partial = target.with_name(f".{target.name}.{secrets.token_hex(6)}.partial")
    engine = make_engine(partial)
    try:
        upgrade(engine, circuitdb_definitions())
        prefix = tenant_prefix(tenant)
        with engine.connect() as conn:
            conn.exec_driver_sql("ATTACH DATABASE ? AS shared", (str(source),))
            conn.exec_driver_sql("BEGIN IMMEDIATE")
            try:
                found = conn.execute(
                    sa.text(
                        "SELECT type, name, sql FROM shared.sqlite_master WHERE type IN ('table', 'index') "
                        "AND sql IS NOT NULL AND substr(tbl_name, 1, :n) = :prefix ORDER BY type = 'index', name"
                    ),
                    {"n": len(prefix), "prefix": prefix},
                ).all()
                quote = conn.dialect.identifier_preparer.quote
                for kind, name, sql in found:
                    conn.exec_driver_sql(sql)  # the DDL SQLite keeps: unqualified, so it lands in main
                    if kind == "table":
                        conn.exec_driver_sql(f"INSERT INTO main.{quote(name)} SELECT * FROM shared.{quote(name)}")
                conn.exec_driver_sql(
                    f"INSERT INTO main.{SCHEMA_TABLE} (tenant, object, field, definition) "
                    f"SELECT tenant, object, field, definition FROM shared.{SCHEMA_TABLE} WHERE tenant = ?",
                    (tenant,),
                )
                conn.exec_driver_sql("COMMIT")
            except BaseException:
                conn.exec_driver_sql("ROLLBACK")
                raise
            finally:
                conn.exec_driver_sql("DETACH DATABASE shared")
        engine.dispose()  # the last connection checkpoints the WAL into the file and removes it
        try:
            os.link(partial, target)
        except FileExistsError:
            return False
        return True
    finally:
        engine.dispose()
        for suffix in ("", "-wal", "-shm"):
            Path(f"{partial}{suffix}").unlink(missing_ok=True)


def _load(conn: Connection, tenant: str) -> _Stored:
    stored = _Stored()
    query = sa.select(schema_table.c.object, schema_table.c.field, schema_table.c.definition).where(
        schema_table.c.tenant == tenant
    )
    for object_key, field_key, definition in conn.execute(query):
        data = json.loads(definition)
        if field_key == "":
            stored.objects[object_key] = data
        else:
            stored.fields[(object_key, field_key)] = FieldDef.from_json(data)
    return stored


def _merge(stored: _Stored, changes: SchemaChanges, limits: SchemaLimits) -> list[tuple[str, str, dict[str, Any]]]:
    """Apply ``changes`` to ``stored``; the metadata rows that changed. ``Rejected`` if any is invalid
    or the result passes ``limits``. Each definition costs the same however large the schema is."""
    rows: list[tuple[str, str, dict[str, Any]]] = []
    objects_before = len(stored.objects)
    fields_before = stored.custom_field_counts()
    used = {o.prefix for o in STANDARD_OBJECTS} | {meta["prefix"] for meta in stored.objects.values()}
    created: set[str] = set()
    for obj in changes.objects:
        where = f"object {obj.name}"
        check_custom_name(obj.name, "object", where)
        key = obj.key
        if key in _STANDARD:
            raise Rejected(f"{where}: {obj.name} is a standard object")
        if key not in stored.objects:
            attempt = 0
            while (prefix := record_id_prefix(obj.name, attempt)) in used:
                attempt += 1
            used.add(prefix)
            meta = {"name": obj.name, "label": obj.label or obj.name, "prefix": prefix}
            stored.objects[key] = meta
            created.add(key)
            rows.append((key, "", meta))
        for f in obj.fields:
            if f.system or _CUSTOM_BASE.get(f.key) == f:
                continue  # the store's own fields, or the default Name restated
            rows += _merge_field(stored, obj.name, f, allow_name=True, new_object=key in created)
    for object_name, f in changes.fields:
        rows += _merge_field(stored, object_name, f, allow_name=False)
    _check_limits(stored, limits, objects_before, fields_before)
    return rows


def _merge_field(
    stored: _Stored, object_name: str, f: FieldDef, *, allow_name: bool, new_object: bool = False
) -> list[tuple[str, str, dict[str, Any]]]:
    where = f"field {object_name}.{f.name}"
    object_key = object_name.lower() if isinstance(object_name, str) else ""
    if stored.object_name(object_key) is None:
        raise Rejected(f"{where}: unknown object {object_name!r}")
    custom = object_key not in _STANDARD
    if not (allow_name and custom and isinstance(f.name, str) and f.name.lower() == "name"):
        check_custom_name(f.name, "field", where)
    check_field(f, where)
    for target in f.reference_to:
        if not isinstance(target, str) or stored.object_name(target.lower()) is None:
            raise Rejected(f"{where}: reference_to names unknown object {target!r}")
    existing = stored.current_field(object_key, f.key)
    if existing is not None:
        if existing == f:
            return []
        problem = None if new_object else incompatible_change(existing, f)
        if existing.key in SYSTEM_KEYS or (not custom and not existing.name.endswith("__c")):
            problem = f"{existing.name} is a standard field"
        if problem is not None:
            raise Rejected(f"{where}: {problem}")
    stored.fields[(object_key, f.key)] = f
    return [(object_key, f.key, f.to_json())]


def _check_limits(stored: _Stored, limits: SchemaLimits, objects_before: int, fields_before: dict[str, int]) -> None:
    """``Rejected`` if the merge grew the schema past ``limits`` (one that was already past may stay)."""
    objects = len(stored.objects)
    if objects > limits.max_custom_objects and objects > objects_before:
        raise Rejected(
            f"schema: {objects} custom objects would exceed this environment's limit of "
            f"{limits.max_custom_objects} (max_custom_objects)"
        )
    for object_key, count in sorted(stored.custom_field_counts().items()):
        if count > limits.max_custom_fields_per_object and count > fields_before.get(object_key, 0):
            raise Rejected(
                f"object {stored.object_name(object_key)}: {count} custom fields would exceed the limit of "
                f"{limits.max_custom_fields_per_object} per object (max_custom_fields_per_object)"
            )


@dataclass(frozen=True)
class OutboxJob:
    """A job an execution asked for, held in the job outbox (``circuitdb_job_outbox``) from its
    records commit until the host has put it on the job queue under ``key``."""

    key: str
    circuit: str
    payload: Any  # JSON-like


class AlreadyApplied(CircuitError):
    """A transaction's receipt was recorded by an earlier commit: the work it applies is in already."""

    kind = "already_applied"


class CircuitTransaction:
    """One execution's transaction on its own connection; see the module docstring."""

    def __init__(self, db: CircuitDB, conn: Connection, receipts: Sequence[str] = ()) -> None:
        self._db = db
        self._conn = conn
        self._receipts = list(receipts)
        self._state: Literal["idle", "reading", "writing", "closed"] = "idle"
        self._savepoints = 0
        self._deadline: float | None = None  # PostgreSQL: the running scope's deadline (monotonic)
        # PostgreSQL: the RELEASE of the last savepoint that ended well, sent with the next control
        # statement (a SAVEPOINT or RELEASE) in the same round trip; a COMMIT or ROLLBACK makes it moot.
        self._release: str | None = None
        if db.dialect != "sqlite":
            sa.event.listen(conn, "before_cursor_execute", self._keep_to_deadline)

    def _keep_to_deadline(self, conn: Connection, cursor: Any, *_statement: Any) -> None:
        """PostgreSQL: before each statement of a bounded scope, ``statement_timeout`` becomes the time
        left, so a DML's statements (and the Python work between them) share one deadline instead of
        each having the whole budget; none is sent once it has passed."""
        if self._deadline is None:
            return
        left_ms = int((self._deadline - time.monotonic()) * 1000)
        if left_ms < 1:
            raise QueryTimeout("the time limit passed between the statements of one scope")
        cursor.connection.execute(f"SET LOCAL statement_timeout = {left_ms}")  # not ``cursor``: it may be named

    @property
    def store(self) -> CircuitDB:
        return self._db

    # --- lifecycle -------------------------------------------------------------------------

    def _enter(self, state: Literal["reading", "writing"]) -> None:
        if self._state == "closed":
            raise RuntimeError("transaction is closed")
        if self._db.dialect != "sqlite":
            if self._state == "idle":
                self._conn.exec_driver_sql("BEGIN")
                self._state = "writing"
            return
        if state == "reading" and self._state == "idle":
            self._conn.exec_driver_sql("BEGIN DEFERRED")
            self._state = "reading"
        elif state == "writing" and self._state != "writing":
            if self._state == "reading":
                # Nothing written yet, so ending the read snapshot loses nothing; taking the
                # write lock from a stale snapshot would fail instead of waiting.
                self._conn.exec_driver_sql("COMMIT")
                self._state = "idle"
            try:
                self._conn.exec_driver_sql("BEGIN IMMEDIATE")
            except sa.exc.OperationalError as e:
                raise CircuitError(f"records store busy: {e.orig}") from e
            self._state = "writing"

    def _control(self, statement: str) -> None:
        """A transaction-control statement, after the pending RELEASE if there is one (PostgreSQL
        runs both in one round trip; a failing RELEASE fails the statement as it would have alone)."""
        if self._release is not None:
            statement = f"{self._release}; {statement}"
            self._release = None
        self._conn.exec_driver_sql(statement)

    def _finish(self, statement: str) -> None:
        if self._state == "closed":
            raise RuntimeError("transaction is closed")
        self._release = None  # COMMIT releases every savepoint; ROLLBACK undoes them
        try:
            if self._state != "idle":
                self._conn.exec_driver_sql(statement)
        finally:
            self._state = "closed"
            self._conn.close()

    def commit(self) -> None:
        if self._receipts and self._state != "closed":
            self._enter("writing")
            try:
                recorded = datetime.now(UTC).replace(tzinfo=None)
                self._conn.execute(
                    receipts_table.insert(),
                    [{"tenant": self._db.tenant, "key": k, "recorded_at": recorded} for k in self._receipts],
                )
            except sa.exc.IntegrityError:
                raise AlreadyApplied(f"already applied: {', '.join(self._receipts[:5])}") from None
        self._finish("COMMIT")

    def add_outbox_jobs(self, jobs: Sequence[OutboxJob]) -> None:
        """(host only) Write jobs into the job outbox in this transaction: they exist only if it commits."""
        if not jobs:
            return
        self._enter("writing")
        recorded = datetime.now(UTC).replace(tzinfo=None)
        self._conn.execute(
            job_outbox_table.insert(),
            [
                {
                    "tenant": self._db.tenant,
                    "key": job.key,
                    "circuit": job.circuit,
                    "payload": json.dumps(job.payload, separators=(",", ":")),
                    "recorded_at": recorded,
                }
                for job in jobs
            ],
        )

    def rollback(self) -> None:
        self._finish("ROLLBACK")

    def close(self) -> None:
        if self._state != "closed":
            self._finish("ROLLBACK")

    def __enter__(self) -> CircuitTransaction:
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()

    @contextmanager
    def savepoint(self) -> Iterator[None]:
        """A nested all-or-none scope: an exception inside undoes its writes and propagates.

        On PostgreSQL a transaction not yet begun begins with the savepoint, and the savepoint is
        released with the next control statement: one round trip each instead of three.
        """
        postgres = self._db.dialect != "sqlite"
        begin = ""
        if postgres and self._state == "idle":
            begin, self._state = "BEGIN; ", "writing"
        else:
            self._enter("writing")
        self._savepoints += 1
        name = f"cdb_sp{self._savepoints}"
        self._control(f"{begin}SAVEPOINT {name}")
        try:
            yield
        except BaseException:
            if self._state != "closed":
                # A savepoint inside this one waiting for its RELEASE goes with the rollback.
                self._release = None
                if postgres:
                    self._conn.exec_driver_sql(f"ROLLBACK TO SAVEPOINT {name}; RELEASE SAVEPOINT {name}")
                else:
                    self._conn.exec_driver_sql(f"ROLLBACK TO SAVEPOINT {name}")
                    self._conn.exec_driver_sql(f"RELEASE SAVEPOINT {name}")
            raise
        finally:
            self._savepoints -= 1
        if postgres:
            self._release = f"RELEASE SAVEPOINT {name}"  # releases any savepoint inside it still pending too
        else:
            self._conn.exec_driver_sql(f"RELEASE SAVEPOINT {name}")

    # --- reads -----------------------------------------------------------------------------

    def query(
        self,
        soql: str | Query,
        binds: Mapping[str, Any],
        max_rows: int,
        timeout_ms: int | None = None,
        max_bytes: int | None = None,
    ) -> QueryResult:
        """``soql`` as text, or parsed (host only: a query the host rewrote, e.g. a batch's keyset chunk)."""
        if max_rows < 0:
            raise ValueError("max_rows must not be negative")
        parsed = soql if isinstance(soql, Query) else _parsed(soql) if len(soql) <= _PARSED_LENGTH else parse(soql)
        what = f"query on {parsed.object_name}"
        if timeout_ms is not None and timeout_ms <= 0:
            raise QueryTimeout(f"{what}: no time left to run it")
        if self._db.dialect == "sqlite" or self._state != "idle":
            self._enter("reading")  # PostgreSQL: a transaction not begun begins with the read's savepoint
        try:
            compiled = self._compile(parsed, binds, max_rows)
        except QueryError:
            if not self._db.refresh():
                raise
            compiled = self._compile(parsed, binds, max_rows)
        # The parser's caps on nesting and conditions keep queries inside SQLite's limits; the
        # translation of "too complex" is only a backstop.
        steps = _PROGRESS_STEPS_LIKE if compiled.has_like else _PROGRESS_STEPS
        with translated(what, QueryError, timeout_ms), self._statement_scope(timeout_ms, steps):
            if compiled.count:
                return QueryResult([], int(self._conn.execute(compiled.statement).scalar_one()))
            records = self._fetch_within(compiled, max_bytes, what)
        return QueryResult(records, len(records))

    def _fetch_within(self, compiled: Any, max_bytes: int | None, what: str) -> list[dict[str, Any]]:
        """The query's records, fetched in batches and counted as they come: a result past
        ``max_bytes`` stops the fetch (``QueryTooLarge``) instead of loading whole first."""
        records: list[dict[str, Any]] = []
        size = 0
        # A server-side cursor (PostgreSQL) costs round trips of its own (DECLARE, FETCH, CLOSE); a
        # select that cannot return more than one batch is read whole in one.
        streamed = compiled.row_cap is None or compiled.row_cap > _FETCH_BATCH
        options = {"yield_per": _FETCH_BATCH} if streamed else {}
        result = self._conn.execute(compiled.statement, execution_options=options)
        try:
            for batch in result.partitions(_FETCH_BATCH):
                found, sizes = compiled.records(batch)
                totals = list(accumulate(sizes, initial=size))[1:]
                size = totals[-1]
                if max_bytes is not None and size > max_bytes:
                    passed = next(i for i, total in enumerate(totals) if total > max_bytes)
                    raise QueryTooLarge(f"{what}: records passed {max_bytes} bytes", totals[passed])
                records += found
        finally:
            result.close()
        return records

    @contextmanager
    def _statement_scope(
        self, timeout_ms: int | None, steps: int = _PROGRESS_STEPS, *, savepoint: bool = True
    ) -> Iterator[None]:
        """One read statement (or the statements of one DML), cut off after ``timeout_ms``; on
        PostgreSQL in a savepoint (unless the caller holds one for it: ``savepoint=False``), so that
        a failed (or cut-off) statement does not abort the rest of the transaction, as on SQLite. On
        PostgreSQL each statement's ``statement_timeout`` is the time left of the one deadline
        (``_keep_to_deadline``)."""
        if self._db.dialect == "sqlite":
            if timeout_ms is None:
                yield
                return
            raw = self._conn.connection.dbapi_connection
            assert raw is not None
            # One mechanism for reads and DML: a progress handler, called every ``steps`` VM steps
            # of whichever statement runs, stops it once the deadline has passed (SQLite then
            # fails it as interrupted). No thread per statement, and a DML's many short statements
            # (one per row, in C) are covered as well as one long query. Like an interrupt, it acts
            # between VM steps, not inside one (a single LIKE on a long value).
            deadline = time.monotonic() + timeout_ms / 1000
            raw.set_progress_handler(lambda: time.monotonic() > deadline, steps)
            try:
                yield
            finally:
                raw.set_progress_handler(None, steps)
            return
        if savepoint:
            begin = ""
            if self._state == "idle":
                begin, self._state = "BEGIN; ", "writing"
            elif self._state == "closed":
                raise RuntimeError("transaction is closed")
            self._control(f"{begin}SAVEPOINT cdb_read")
        armed = None
        if timeout_ms is not None:
            # Each statement from here gets the time left (_keep_to_deadline), and whatever still runs
            # at the deadline (the rows of one pipelined executemany) is cancelled by the watchdog.
            self._deadline = time.monotonic() + timeout_ms / 1000
            raw = self._conn.connection.dbapi_connection
            assert raw is not None
            armed = WATCHDOG.arm(self._deadline, raw.cancel_safe)
        try:
            yield
        except BaseException:
            self._end_deadline(armed)
            if savepoint:
                self._release = None
                self._conn.exec_driver_sql("ROLLBACK TO SAVEPOINT cdb_read; RELEASE SAVEPOINT cdb_read")
            raise
        reset = self._deadline is not None
        self._end_deadline(armed)
        if reset:  # now: the statements after this scope must not run under its time limit
            self._control(
                "SET LOCAL statement_timeout TO DEFAULT" + ("; RELEASE SAVEPOINT cdb_read" if savepoint else "")
            )
        elif savepoint:
            self._release = "RELEASE SAVEPOINT cdb_read"

    def _end_deadline(self, armed: Armed | None) -> None:
        """No cancel from here on (one being sent finishes first), before the savepoint is let go."""
        self._deadline = None
        if armed is not None:
            armed.disarm()

    def _compile(self, parsed: Any, binds: Mapping[str, Any], max_rows: int) -> Any:
        catalog = self._db._catalog
        today = datetime.now(UTC).date()
        return compile_query(parsed, catalog.schema, catalog.table, binds, max_rows, self._conn.dialect, today)

    def fetch(self, object_name: str, ids: Sequence[str]) -> list[dict[str, Any]]:
        """Host only: every field of these records, deleted ones included, in ``ids`` order."""
        obj, table = self._object(object_name, DmlError)
        self._enter("reading")
        wanted = sorted({i for i in ids if isinstance(i, str)})
        if not wanted:
            return []
        id_field = obj.field("Id")
        assert id_field is not None
        listed = sa.select(value_table(wanted, id_field, self._conn.dialect).c.value)
        found: dict[str, dict[str, Any]] = {}
        with translated(f"reading {obj.name} records", DmlError):
            rows = self._conn.execute(sa.select(table).where(table.c.id.in_(listed))).mappings().all()
        for row in rows:
            found[row["id"]] = {f.name: from_storage(f, row[f.key]) for f in obj.fields}
        return [found[i] for i in ids if i in found]

    # --- writes ----------------------------------------------------------------------------

    def dml(
        self,
        op: DmlOp,
        object_name: str,
        rows: Sequence[Mapping[str, Any]],
        external_id: str = "Id",
        timeout_ms: int | None = None,
    ) -> DmlResult:
        op = DmlOp(op)
        return self._write(object_name, lambda statement: statement.run(op, rows, external_id), timeout_ms)

    def seed(self, object_name: str, rows: Sequence[Mapping[str, Any]]) -> list[str]:
        return self._write(object_name, lambda statement: statement.seed(rows))

    def _write(self, object_name: str, work: Callable[[Statement], _T], timeout_ms: int | None = None) -> _T:
        """Run one statement in its own savepoint, cut off and undone after ``timeout_ms``
        (``QueryTimeout``); retried once if the schema was stale."""
        self._object(object_name, DmlError)
        if timeout_ms is not None and timeout_ms <= 0:
            raise QueryTimeout(f"DML on {object_name}: no time left to run it")
        if self._db.dialect == "sqlite" or self._state != "idle":
            self._enter("writing")  # PostgreSQL: a transaction not begun begins with the savepoint

        def bounded() -> AbstractContextManager[None]:
            # In the statement's savepoint: on PostgreSQL the scope needs none of its own.
            return self._statement_scope(timeout_ms, savepoint=False) if timeout_ms is not None else nullcontext()

        with translated(f"DML on {object_name}", DmlError, timeout_ms):
            for attempt in (1, 2):
                catalog = self._db._catalog
                obj = catalog.schema.object(object_name)
                assert obj is not None
                try:
                    with self.savepoint(), bounded():
                        return work(Statement(self._conn, catalog.schema, obj, catalog.table, now()))
                except UnknownField:
                    if attempt == 2 or not self._db.refresh():
                        raise
                except sa.exc.IntegrityError as e:
                    # Only a concurrent transaction can get past the statement's own uniqueness checks.
                    log.info("unique index conflict", object=obj.name, error=str(e.orig))
                    raise DmlError(
                        f"duplicate value on a unique field of {obj.name}: another transaction saved it first"
                    ) from None
        raise AssertionError("unreachable")

    def _object(self, object_name: str, error: type[CircuitError]) -> tuple[ObjectDef, sa.Table]:
        if not isinstance(object_name, str) or not IDENTIFIER.fullmatch(object_name):
            raise error(f"invalid object name {shown(object_name)}")
        obj = self._db.schema.object(object_name)
        if obj is None and self._db.refresh():
            obj = self._db.schema.object(object_name)
        if obj is None:
            raise error(f"unknown object {object_name!r}")
        return obj, self._db._catalog.table(obj)


__all__ = ["CircuitDB", "CircuitTransaction", "SchemaChanges", "copy_tenant", "drop_tenant", "open_store"]
