"""Stored executions: what ran, on which trigger, how it ended, what it used, and its debug log."""

from __future__ import annotations

import json
from datetime import datetime, timedelta
from typing import Any

import sqlalchemy as sa

from ..errors import Rejected
from .database import PlatformDatabase, check_env, page_size
from .models import Conflict, ExecutionEntry, NotFound
from .tenants import Tenants


class ExecutionHistory:
    """Executions per tenant, newest first, kept for each tenant's ``execution_retention_days``."""

    def __init__(self, db: PlatformDatabase, tenants: Tenants) -> None:
        self._db = db
        self._tenants = tenants

    def save_execution(self, entry: ExecutionEntry) -> None:
        check_env(entry.env)
        if entry.started_at.tzinfo is None:
            raise Rejected("started_at must be an aware datetime")
        try:
            with self._db.write() as conn:
                conn.execute(
                    self._db.tables.executions.insert().values(
                        id=entry.id,
                        tenant_id=entry.tenant_id,
                        env=entry.env,
                        circuit=entry.circuit,
                        version=entry.version,
                        trigger=entry.trigger[:200],
                        status=entry.status,
                        error=entry.error,
                        usage=json.dumps(entry.usage, default=str),
                        duration_ms=float(entry.duration_ms),
                        started_at=entry.started_at,
                        debug_log=entry.debug_log,
                    )
                )
        except sa.exc.IntegrityError:
            raise Conflict(f"execution {entry.id!r} already exists") from None

    def list_executions(
        self,
        tenant_id: str,
        env: str | None = None,
        circuit: str | None = None,
        status: str | None = None,
        since: datetime | None = None,
        until: datetime | None = None,
        limit: int = 50,
        before_id: str | None = None,
        include_log: bool = False,
    ) -> list[ExecutionEntry]:
        """Executions newest first. ``before_id`` (the last id of a page) continues after it.

        ``since`` is inclusive and ``until`` exclusive. The debug log is left empty unless
        ``include_log``: it can be large, and ``get_execution`` has it.
        """
        e = self._db.tables.executions
        columns = [c for c in e.c if include_log or c.name != "debug_log"]
        query = sa.select(*columns).where(e.c.tenant_id == tenant_id)
        for column, value in ((e.c.env, env), (e.c.circuit, circuit), (e.c.status, status)):
            if value is not None:
                query = query.where(column == value)
        if since is not None:
            query = query.where(e.c.started_at >= since)
        if until is not None:
            query = query.where(e.c.started_at < until)
        with self._db.read() as conn:
            if before_id is not None:
                cursor = conn.execute(
                    sa.select(e.c.started_at).where((e.c.tenant_id == tenant_id) & (e.c.id == before_id))
                ).scalar()
                if cursor is None:
                    raise NotFound(f"execution {before_id!r} does not exist")
                query = query.where((e.c.started_at < cursor) | ((e.c.started_at == cursor) & (e.c.id < before_id)))
            rows = conn.execute(query.order_by(e.c.started_at.desc(), e.c.id.desc()).limit(page_size(limit))).all()
        return [_execution(r) for r in rows]

    def get_execution(self, tenant_id: str, execution_id: str) -> ExecutionEntry | None:
        e = self._db.tables.executions
        with self._db.read() as conn:
            row = conn.execute(sa.select(e).where((e.c.tenant_id == tenant_id) & (e.c.id == execution_id))).first()
        return None if row is None else _execution(row)

    def purge_executions(self, tenant_id: str, older_than: datetime) -> int:
        """Delete the tenant's executions that started before ``older_than``; returns how many."""
        e = self._db.tables.executions
        with self._db.write() as conn:
            result = conn.execute(e.delete().where((e.c.tenant_id == tenant_id) & (e.c.started_at < older_than)))
        return int(result.rowcount)

    def purge_expired_executions(self) -> int:
        """Apply every tenant's ``execution_retention_days``; for a periodic task."""
        now = self._db.now()
        return sum(
            self.purge_executions(t.id, now - timedelta(days=t.settings.execution_retention_days))
            for t in self._tenants.list_tenants()
        )


def _execution(row: Any) -> ExecutionEntry:
    mapping = row._mapping
    return ExecutionEntry(
        id=row.id,
        tenant_id=row.tenant_id,
        env=row.env,
        circuit=row.circuit,
        version=row.version,
        trigger=row.trigger,
        status=row.status,
        started_at=row.started_at,
        duration_ms=float(row.duration_ms),
        error=row.error,
        usage=json.loads(row.usage),
        debug_log=mapping.get("debug_log") or "",
    )
