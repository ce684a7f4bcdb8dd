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
    """Executions per tenant, newest first, kept for each tenant's ``execution_retention_days`` and
    within its storage quotas (``max_stored_executions``, ``max_stored_log_bytes``)."""

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
                        trace_id=entry.trace_id,
                        timeline=json.dumps(entry.timeline) if entry.timeline else None,
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

        ``since`` is inclusive and ``until`` exclusive. The debug log and timeline are left empty
        unless ``include_log``: they can be large, and ``get_execution`` has them.
        """
        e = self._db.tables.executions
        columns = [c for c in e.c if include_log or c.name not in ("debug_log", "timeline")]
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

    def purge_over_quota(self, tenant_id: str, max_executions: int, max_log_bytes: int) -> int:
        """Delete the tenant's oldest executions beyond ``max_executions`` or beyond ``max_log_bytes``
        of debug logs and timelines (counted newest first); returns how many. Other tenants' rows are
        never read."""
        e = self._db.tables.executions
        newest_first = (e.c.started_at.desc(), e.c.id.desc())

        def stored_bytes(column: sa.Column[str]) -> sa.ColumnElement[int]:
            if self._db.dialect == "sqlite":  # SQLite's octet_length is recent; a blob's length is its bytes
                return sa.func.coalesce(sa.func.length(sa.cast(column, sa.LargeBinary)), 0)
            return sa.func.coalesce(sa.func.octet_length(column), 0)

        log_bytes = stored_bytes(e.c.debug_log) + stored_bytes(e.c.timeline)
        ranked = (
            sa.select(
                e.c.started_at,
                e.c.id,
                sa.func.row_number().over(order_by=newest_first).label("rank"),
                sa.func.sum(log_bytes).over(order_by=newest_first).label("log_bytes"),
            )
            .where(e.c.tenant_id == tenant_id)
            .subquery()
        )
        with self._db.write() as conn:
            first_over = conn.execute(
                sa.select(ranked.c.started_at, ranked.c.id)
                .where((ranked.c.rank > max_executions) | (ranked.c.log_bytes > max_log_bytes))
                .order_by(ranked.c.rank)
                .limit(1)
            ).first()
            if first_over is None:
                return 0
            started_at, execution_id = first_over
            older = (e.c.started_at < started_at) | ((e.c.started_at == started_at) & (e.c.id <= execution_id))
            result = conn.execute(e.delete().where((e.c.tenant_id == tenant_id) & older))
        return int(result.rowcount)

    def purge_expired_executions(self) -> int:
        """Apply every tenant's ``execution_retention_days`` and storage quotas; for a periodic task."""
        now = self._db.now()
        purged = 0
        for tenant in self._tenants.list_tenants():
            settings = tenant.settings
            purged += self.purge_executions(tenant.id, now - timedelta(days=settings.execution_retention_days))
            purged += self.purge_over_quota(tenant.id, settings.max_stored_executions, settings.max_stored_log_bytes)
        return purged


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
        trace_id=row.trace_id,
        timeline=json.loads(mapping.get("timeline") or "[]"),
    )
