"""Alembic migrations of the host's own tables, run in code when a store opens its database.

Three schemas are migrated, each with its own revisions (``versions/<schema>/``) and version
table (``<prefix><schema>_alembic_version``), because each may live in a database of its
own: the control plane (``control_plane``, tables ``<prefix>*``), CircuitDB's definitions
(``circuitdb``, ``circuitdb_schema``; each tenant's record tables follow its schema and are
migrated by CircuitDB itself) and the CRM outbox (``outbox``, ``<prefix>outbox`` and
``<prefix>id_map``). Revision ``0001`` of each is the schema as it was before migrations: it
creates only the tables that are missing, so a database made by older code is adopted as it
is. A database at a revision this code does not know (made by a newer Circuit Script) is
refused with ``SchemaTooNew``.

Adding a migration: ``python -m circuit_host.migrations revision <schema> -m "what changes"``
(see ``platform/README.md``).
"""

from __future__ import annotations

import hashlib
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import sqlalchemy as sa
from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy.engine import Connection, Engine

from ..errors import CircuitError

HERE = Path(__file__).resolve().parent


class SchemaTooNew(CircuitError):
    """The database was migrated by a newer Circuit Script than this one."""

    kind = "schema_too_new"


@dataclass(frozen=True)
class MigratedSchema:
    """One schema under migration: its revisions folder and the table prefix it is created with."""

    name: str  # the folder of its revisions in versions/
    prefix: str = ""  # of its tables and of its version table, ``<prefix><name>_alembic_version``

    @property
    def version_table(self) -> str:
        return f"{self.prefix}{self.name}_alembic_version"


def control_plane(prefix: str = "cs_") -> MigratedSchema:
    return MigratedSchema("control_plane", prefix)


def circuitdb_definitions() -> MigratedSchema:
    return MigratedSchema("circuitdb")


def crm_outbox(prefix: str = "crm_") -> MigratedSchema:
    return MigratedSchema("outbox", prefix)


def job_queue(prefix: str = "cs_") -> MigratedSchema:
    """The job queue's tables (``jobs/job_tables.py``), on the control-plane database."""
    return MigratedSchema("jobs", prefix)


def webhook_inbox(prefix: str = "cs_") -> MigratedSchema:
    """The webhook inbox (``platform/inbox_rows.py``), on the control-plane database beside the jobs."""
    return MigratedSchema("inbox", prefix)


def batch_runs(prefix: str = "cs_") -> MigratedSchema:
    """Batch circuits' progress (``platform/batch_rows.py``), on the control-plane database beside the jobs."""
    return MigratedSchema("batches", prefix)


# with default prefixes
SCHEMAS = {
    s.name: s
    for s in (control_plane(), circuitdb_definitions(), crm_outbox(), job_queue(), webhook_inbox(), batch_runs())
}


def alembic_config(schema: MigratedSchema, connection: Connection | None = None) -> Config:
    """An Alembic configuration for ``schema``, built in code (no ``alembic.ini``)."""
    config = Config()
    config.set_main_option("script_location", str(HERE))
    config.set_main_option("version_locations", str(HERE / "versions" / schema.name))
    config.set_main_option("path_separator", "os")
    config.attributes.update(
        {"schema": schema.name, "table_prefix": schema.prefix, "version_table": schema.version_table}
    )
    if connection is not None:
        config.attributes["connection"] = connection
    return config


_scripts: dict[str, ScriptDirectory] = {}
_scripts_lock = threading.Lock()


def _script(schema: MigratedSchema) -> ScriptDirectory:
    """The schema's revisions, read once per process."""
    with _scripts_lock:
        script = _scripts.get(schema.name)
        if script is None:
            script = _scripts[schema.name] = ScriptDirectory.from_config(alembic_config(schema))
        return script


def upgrade(engine: Engine, schema: MigratedSchema) -> None:
    """Bring ``schema`` in ``engine``'s database to the newest revision, under a lock processes share.

    ``engine`` runs statements in autocommit mode (``storage_engine.make_engine``): the whole
    upgrade is one explicit transaction, so a failed migration leaves nothing behind.
    """
    script = _script(schema)
    heads = set(script.get_heads())
    with engine.connect() as conn:
        if _current(conn, schema) == heads:
            return
        if conn.dialect.name == "sqlite":
            conn.exec_driver_sql("BEGIN IMMEDIATE")
        else:
            conn.exec_driver_sql("BEGIN")
            conn.execute(sa.select(sa.func.pg_advisory_xact_lock(_lock_key(schema))))
        try:
            current = _current(conn, schema)  # again: another process may have migrated meanwhile
            known = {s.revision for s in script.walk_revisions()}
            unknown = sorted(current - known)
            if unknown:
                raise SchemaTooNew(
                    f"the {schema.name.replace('_', ' ')} tables ({schema.version_table}) are at revision "
                    f"{', '.join(unknown)}, which this Circuit Script does not know (it knows up to "
                    f"{', '.join(sorted(heads))}): the database was upgraded by a newer version; run that version"
                )
            if current != heads:
                command.upgrade(alembic_config(schema, conn), "heads")
            conn.exec_driver_sql("COMMIT")
        except BaseException:
            conn.exec_driver_sql("ROLLBACK")
            raise


def head_revisions(schema: MigratedSchema) -> set[str]:
    """The newest revisions this code knows: what an up-to-date database is at."""
    return set(_script(schema).get_heads())


def current_revisions(engine: Engine, schema: MigratedSchema) -> set[str]:
    """The revisions recorded in the database (empty before the first upgrade)."""
    with engine.connect() as conn:
        return _current(conn, schema)


def run_in_context(context: Any) -> None:
    """The body of ``env.py``: run the migrations on the connection ``upgrade`` handed over."""
    config = context.config
    connection = config.attributes.get("connection")
    if connection is None:
        raise CircuitError("migrations run on a connection: use circuit_host.migrations.upgrade, not alembic upgrade")
    context.configure(connection=connection, version_table=config.attributes["version_table"])
    with context.begin_transaction():
        context.run_migrations()


def table_prefix() -> str:
    """The table prefix the running migration creates tables with (for revision files)."""
    from alembic import context

    return str(context.config.attributes["table_prefix"])


def create_missing(*tables: sa.Table) -> None:
    """Create those of ``tables`` that do not exist yet (revision ``0001`` adopts tables made before migrations)."""
    from alembic import op

    bind = op.get_bind()
    for table in tables:
        if not sa.inspect(bind).has_table(table.name):
            table.create(bind)


def _current(conn: Connection, schema: MigratedSchema) -> set[str]:
    context = MigrationContext.configure(conn, opts={"version_table": schema.version_table})
    return set(context.get_current_heads())


def _lock_key(schema: MigratedSchema) -> int:
    digest = hashlib.sha256(f"circuit-migrations:{schema.version_table}".encode()).digest()
    return int.from_bytes(digest[:8], "big", signed=True)
