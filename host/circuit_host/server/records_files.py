"""Each tenant environment's records in a SQLite file of its own, on the embedded default.

SQLite locks a whole file for writing, so when every tenant shared ``data_dir/records.sqlite3`` one
tenant's long execution or schema change made every other tenant's writes wait (and fail after the
busy timeout). Now each tenant environment has ``data_dir/records/<tenant_id>/<env>.sqlite3``
(``ServerSettings.records_file``; folders 0700, files 0600). With a shared PostgreSQL database
(``db_url``) the tenants' tables stay side by side in it, where writes lock rows, not the database.

A data directory from before keeps its records in the shared file. The first start moves them:
each tenant environment's tables and definitions are copied, verbatim, into its own file
(``circuitdb.copy_tenant``: whole or not at all, never over a file that exists), then the shared
file is renamed ``records.sqlite3.pre-split`` for the operator to delete once satisfied. Tables of
no known tenant environment stay in that file (a warning counts them). Interrupted, the next start
carries on: files already made are kept. Every server using the data directory must be stopped
before the upgrade, as for any migration.
"""

from __future__ import annotations

import contextlib
import os
import stat
from collections.abc import Iterable
from pathlib import Path

import sqlalchemy as sa
import structlog

from ..circuitdb import CircuitDB, SchemaLimits, open_store
from ..circuitdb.store import copy_tenant
from ..circuitdb.tables import SCHEMA_TABLE, tenant_prefix
from ..migrations import circuitdb_definitions, upgrade
from ..platform import ENVIRONMENTS, records_tenant
from ..storage_engine import make_engine
from .settings import ServerSettings

log = structlog.get_logger("circuit.server")
SHARED_RECORDS = "records.sqlite3"
SPLIT_BACKUP = "records.sqlite3.pre-split"


def open_records(settings: ServerSettings, tenant_id: str, env: str, limits: SchemaLimits) -> CircuitDB:
    """A tenant environment's records store, its folder made private first when it is a file of its own."""
    path = settings.records_file(tenant_id, env)
    if path is not None:
        private_folders(settings.data_dir, path.parent)
    return open_store(settings.records_url_for(tenant_id, env), records_tenant(tenant_id, env), schema_limits=limits)


def private_folders(data_dir: Path, folder: Path) -> None:
    """Make ``folder`` and the folders between it and ``data_dir`` readable by their owner only (0700)."""
    between = folder.relative_to(data_dir).parts
    current = data_dir
    for part in between:
        current = current / part
        current.mkdir(mode=0o700, exist_ok=True)
        mode = stat.S_IMODE(current.stat().st_mode)
        if mode & 0o077:
            current.chmod(mode & 0o700)


def split_shared_records(settings: ServerSettings, tenant_ids: Iterable[str]) -> list[str]:
    """Move the tenant environments of ``tenant_ids`` out of the old shared file; those moved by this call."""
    shared = settings.data_dir / SHARED_RECORDS
    if settings.db_url is not None or not shared.is_file():
        return []
    engine = make_engine(shared)
    try:
        upgrade(engine, circuitdb_definitions())  # a file from before migrations is adopted first
        with engine.connect() as conn:
            conn.exec_driver_sql("PRAGMA wal_checkpoint(TRUNCATE)")  # all in the main file: it alone is renamed
            tables = {str(n) for (n,) in conn.exec_driver_sql("SELECT name FROM sqlite_master WHERE type = 'table'")}
            defined = {str(t) for (t,) in conn.execute(sa.text(f"SELECT DISTINCT tenant FROM {SCHEMA_TABLE}"))}
    finally:
        engine.dispose()
    moved: list[str] = []
    claimed: set[str] = set()
    for tenant_id in tenant_ids:
        for env in ENVIRONMENTS:
            tenant = records_tenant(tenant_id, env)
            prefix = tenant_prefix(tenant)
            own = {name for name in tables if name.startswith(prefix)}
            claimed |= own
            if not own and tenant not in defined:
                continue
            path = settings.records_file(tenant_id, env)
            assert path is not None
            private_folders(settings.data_dir, path.parent)
            if path.exists():
                log.warning("records file exists; kept instead of the shared file's copy", tenant=tenant)
            elif copy_tenant(shared, path, tenant):
                moved.append(tenant)
    unclaimed = {name for name in tables if name.startswith("cdb_")} - claimed
    backup = _free_name(settings.data_dir / SPLIT_BACKUP)
    for suffix in ("", "-wal", "-shm"):  # the main file first: its name is what says a split is due
        with contextlib.suppress(FileNotFoundError):
            os.rename(f"{shared}{suffix}", f"{backup}{suffix}")
    log.info("records moved to a file per tenant environment", moved=len(moved), kept_in=str(backup))
    if unclaimed:
        log.warning("record tables of no known tenant environment left behind", tables=len(unclaimed), file=str(backup))
    return moved


def _free_name(path: Path) -> Path:
    """``path``, or ``path.1``, ``path.2``... whichever does not exist yet."""
    candidate, n = path, 0
    while candidate.exists():
        n += 1
        candidate = path.with_name(f"{path.name}.{n}")
    return candidate
