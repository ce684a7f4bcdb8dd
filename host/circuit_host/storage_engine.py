"""The one way a store opens its database: a SQLAlchemy engine on a SQLite file or PostgreSQL.

The platform, CircuitDB and the CRM outbox all open their databases here, so they agree on
what a path or URL means and on how connections behave: SQLite files in WAL mode
(``synchronous=NORMAL``), with a busy timeout and connections usable from any thread; PostgreSQL
through psycopg, with a pool that checks a connection before handing it out. A SQLite file is made readable by its
owner only (0600, which SQLite gives its -wal and -shm files too), and a looser one is tightened.
"""

from __future__ import annotations

import os
import stat
import threading
from pathlib import Path
from typing import Any

import sqlalchemy as sa
import structlog
from sqlalchemy.engine import Connection, Engine

from .errors import Rejected

log = structlog.get_logger("circuit.storage")
SQLITE_POOL = {"pool_size": 8, "max_overflow": -1}  # SQLite connections are cheap; writers queue on the lock
POSTGRES_POOL = {"pool_size": 5, "max_overflow": 30, "pool_pre_ping": True}


def database_url(target: str | Path) -> str:
    """``target`` as a SQLAlchemy URL: a path becomes ``sqlite:///path``, ``postgresql://`` gets psycopg."""
    text = str(target)
    if isinstance(target, Path) or "://" not in text:
        return f"sqlite:///{Path(text)}"
    if text.startswith(("postgresql://", "postgres://")):
        return "postgresql+psycopg://" + text.split("://", 1)[1]
    if text.startswith(("sqlite", "postgresql")):
        return text
    raise Rejected(f"unsupported database URL scheme: {text.split(':', 1)[0]!r} (sqlite or postgresql)")


def make_engine(target: str | Path, *, busy_timeout: float = 30.0, autocommit: bool = True) -> Engine:
    """An engine on a SQLite path or URL, or a PostgreSQL URL.

    ``autocommit`` (the platform, CircuitDB): the store issues ``BEGIN``/``COMMIT`` itself on
    connections in driver autocommit mode. Otherwise (the outbox) SQLAlchemy begins and ends
    transactions; on SQLite a transaction then starts with ``BEGIN <sqlite_begin>`` (an
    execution option, ``DEFERRED`` unless given), because pysqlite's own transaction
    handling defers ``BEGIN`` and breaks ``SAVEPOINT``.
    """
    url = database_url(target)
    options: dict[str, Any] = {"isolation_level": "AUTOCOMMIT"} if autocommit else {}
    if url.startswith("postgresql"):
        return sa.create_engine(url, **options, **POSTGRES_POOL)
    database = sa.engine.make_url(url).database
    if database and database != ":memory:" and not database.startswith("file:"):
        private_file(Path(database))
    engine = sa.create_engine(
        url, **options, **SQLITE_POOL, connect_args={"timeout": busy_timeout, "check_same_thread": False}
    )

    @sa.event.listens_for(engine, "connect")
    def _connect(dbapi_connection: Any, _record: Any) -> None:
        if not autocommit:
            dbapi_connection.isolation_level = None
        dbapi_connection.execute("PRAGMA journal_mode=WAL")
        # In WAL mode NORMAL syncs at checkpoints, not at every commit: a commit survives a crash of
        # the process; only a power loss or OS crash can take back the last transactions.
        dbapi_connection.execute("PRAGMA synchronous=NORMAL")

    if not autocommit:

        @sa.event.listens_for(engine, "begin")
        def _begin(conn: Connection) -> None:
            # Writers take the write lock up front (waiting up to the busy timeout) rather than
            # failing when a read snapshot cannot be upgraded; readers never wait.
            conn.exec_driver_sql(f"BEGIN {conn.get_execution_options().get('sqlite_begin', 'DEFERRED')}")

    return engine


class _SharedEngines:
    """One engine per PostgreSQL URL in the process, counted by its users, disposed by the last."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._engines: dict[str, tuple[Engine, int]] = {}

    def acquire(self, url: str, busy_timeout: float) -> Engine:
        with self._lock:
            engine, users = self._engines.get(url) or (make_engine(url, busy_timeout=busy_timeout), 0)
            self._engines[url] = (engine, users + 1)
        return engine

    def release(self, engine: Engine) -> None:
        with self._lock:
            for url, (shared, users) in self._engines.items():
                if shared is engine:
                    if users > 1:
                        self._engines[url] = (shared, users - 1)
                        return
                    del self._engines[url]
                    break
        engine.dispose()


_SHARED = _SharedEngines()


def acquire_engine(target: str | Path, *, busy_timeout: float = 30.0) -> Engine:
    """The engine of a store that is one of many on a database: the records store of each tenant
    environment. On PostgreSQL every such store in the process shares one engine, so one pool bounds
    the process's connections however many tenants it serves (an engine each would keep up to
    ``POSTGRES_POOL`` idle connections per tenant environment, past the server's ``max_connections``).
    A SQLite file is a database of its own: an engine each. Give it back with ``release_engine``."""
    url = database_url(target)
    if not url.startswith("postgresql"):
        return make_engine(url, busy_timeout=busy_timeout)
    return _SHARED.acquire(url, busy_timeout)


def release_engine(engine: Engine) -> None:
    """A store is done with ``engine``: disposed now (SQLite) or when its last store is (PostgreSQL)."""
    _SHARED.release(engine)


def private_file(path: Path) -> None:
    """Make ``path`` (created empty if missing and its folder exists) and its SQLite companions 0600.

    Secrets and records live in these files: other users of the host must not read them.
    """
    try:
        os.close(os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600))
        return
    except FileExistsError:
        pass
    except FileNotFoundError:  # no such folder: SQLite reports it when it opens the file
        return
    for each in (path, path.with_name(path.name + "-wal"), path.with_name(path.name + "-shm")):
        tighten(each, 0o600)


def tighten(path: Path, mode: int) -> None:
    """Take away what ``mode`` does not grant (group and other access), saying so in the log."""
    try:
        current = stat.S_IMODE(path.stat().st_mode)
    except FileNotFoundError:
        return
    if current & ~mode:
        try:
            path.chmod(current & mode)
        except PermissionError:
            log.warning("cannot tighten file mode (not its owner)", path=str(path), mode=oct(current))
            return
        log.warning("tightened file mode", path=str(path), was=oct(current), now=oct(current & mode))
