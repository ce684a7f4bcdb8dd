"""The control plane's one database, shared by every aggregate: engine, tables, transactions, dialect.

Writes that must not interleave take the write lock up front (``BEGIN IMMEDIATE`` on
SQLite) or lock rows (``SELECT ... FOR UPDATE`` on PostgreSQL); uniqueness races are
settled by unique constraints. Opening it brings the tables up to the code's schema
(``migrations``), so an older database is upgraded and a newer one refused.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.engine import Connection

from ..errors import Rejected
from ..migrations import control_plane, upgrade
from ..storage_engine import make_engine
from .models import ENVIRONMENTS
from .tables import Tables, build_tables

MAX_LIST = 1000


def utcnow() -> datetime:
    return datetime.now(UTC)


class PlatformDatabase:
    """Engine, tables (prefix ``cs_`` by default) and transactions. Close it when done; closing twice is fine."""

    def __init__(
        self,
        url: str | Path,
        *,
        prefix: str = "cs_",
        busy_timeout: float = 30.0,
        clock: Callable[[], datetime] = utcnow,
    ) -> None:
        if not re.match(r"^[a-z][a-z0-9_]{0,20}$", prefix):
            raise Rejected(f"table prefix {prefix!r} must be lower case letters, digits and '_'")
        self.engine = make_engine(url, busy_timeout=busy_timeout)
        self.dialect = self.engine.dialect.name
        self.prefix = prefix
        self.tables: Tables = build_tables(prefix)
        self.clock = clock
        self._closed = False
        if self.dialect == "sqlite":
            sa.event.listen(self.engine, "connect", _secure_delete)
        try:
            self.held_plaintext = self._has_plaintext_tokens()
            upgrade(self.engine, control_plane(prefix))
        except BaseException:
            self.engine.dispose()
            raise

    def close(self) -> None:
        """Release the connection pool. Idempotent."""
        if not self._closed:
            self._closed = True
            self.engine.dispose()

    def drop_tables(self) -> None:
        """Drop every platform table and its migration record (tests and throw-away databases only)."""
        self.tables.metadata.drop_all(self.engine)
        with self.engine.connect() as conn:
            conn.exec_driver_sql(f"DROP TABLE IF EXISTS {control_plane(self.prefix).version_table}")

    def _has_plaintext_tokens(self) -> bool:
        """Whether the webhook tokens are stored as written before they were hashed (revision 0003)."""
        with self.engine.connect() as conn:
            inspector = sa.inspect(conn)
            table = self.tables.webhook_tokens.name
            return inspector.has_table(table) and "token" in {c["name"] for c in inspector.get_columns(table)}

    def scrub_freed_space(self) -> None:
        """Rewrite the files so the bytes of values replaced in place (plaintext secrets) are gone:
        SQLite is vacuumed and its write-ahead log emptied; PostgreSQL's tables holding secrets are
        rewritten (``VACUUM FULL``), so no dead row version keeps them."""
        with self.read() as conn:
            if self.dialect == "sqlite":
                conn.exec_driver_sql("VACUUM")
                conn.exec_driver_sql("PRAGMA wal_checkpoint(TRUNCATE)")
            else:
                names = ", ".join(f'"{t.name}"' for t in (self.tables.tenants, self.tables.webhook_tokens))
                conn.exec_driver_sql(f"VACUUM FULL {names}")

    def now(self) -> datetime:
        return self.clock()

    @contextmanager
    def write(self) -> Iterator[Connection]:
        """A read-write transaction; on SQLite it holds the write lock from the start."""
        if self._closed:
            raise RuntimeError("platform store is closed")
        with self.engine.connect() as conn:
            conn.exec_driver_sql("BEGIN IMMEDIATE" if self.dialect == "sqlite" else "BEGIN")
            try:
                yield conn
            except BaseException:
                conn.exec_driver_sql("ROLLBACK")
                raise
            conn.exec_driver_sql("COMMIT")

    @contextmanager
    def read(self) -> Iterator[Connection]:
        """A connection in autocommit mode: each statement on its own."""
        if self._closed:
            raise RuntimeError("platform store is closed")
        with self.engine.connect() as conn:
            yield conn

    def upsert(self, table: sa.Table, values: dict[str, Any], keys: list[str]) -> Any:
        """Insert, or update the non-key columns of the row with the same ``keys``."""
        statement = self._insert(table).values(**values)
        changed = {k: statement.excluded[k] for k in values if k not in keys}
        return statement.on_conflict_do_update(index_elements=keys, set_=changed)

    def insert_ignore(self, table: sa.Table, values: dict[str, Any], keys: list[str]) -> Any:
        """Insert unless a row with the same ``keys`` exists."""
        return self._insert(table).values(**values).on_conflict_do_nothing(index_elements=keys)

    def upsert_many(self, table: sa.Table, keys: list[str], changed: list[str]) -> Any:
        """An insert for many rows that updates ``changed`` columns of rows that exist."""
        statement = self._insert(table)
        return statement.on_conflict_do_update(index_elements=keys, set_={c: statement.excluded[c] for c in changed})

    def _insert(self, table: sa.Table) -> Any:
        return postgresql.insert(table) if self.dialect == "postgresql" else sqlite.insert(table)


def _secure_delete(dbapi_connection: Any, _record: Any) -> None:
    """Deleted and overwritten content is zeroed in the file, so a replaced secret leaves no copy."""
    dbapi_connection.execute("PRAGMA secure_delete=ON")


def check_env(env: str) -> None:
    if env not in ENVIRONMENTS:
        raise Rejected(f"unknown environment {env!r} (expected one of {', '.join(ENVIRONMENTS)})")


def page_size(limit: int) -> int:
    """A caller's list limit, within 1 and ``MAX_LIST``."""
    return max(1, min(int(limit), MAX_LIST))
