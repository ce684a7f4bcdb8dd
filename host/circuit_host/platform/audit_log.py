"""The audit log: who uploaded, deployed, promoted, rolled back or undeployed what, when, where,
and who changed which tenant settings (names only, never values)."""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from .database import PlatformDatabase, page_size
from .models import AuditEntry


class AuditLog:
    """Entries are appended inside the transaction of the change they record, so neither exists alone."""

    def __init__(self, db: PlatformDatabase) -> None:
        self._db = db

    def append(
        self,
        conn: Connection,
        tenant_id: str,
        actor: str,
        action: str,
        env: str | None,
        circuit: str,
        from_version: str | None,
        to_version: str | None,
        changed_keys: Sequence[str] = (),
    ) -> AuditEntry:
        at = self._db.now()
        a = self._db.tables.audit
        new_id = conn.execute(
            a.insert()
            .values(
                tenant_id=tenant_id,
                at=at,
                actor=actor[:200],
                action=action,
                env=env,
                circuit=circuit,
                from_version=from_version,
                to_version=to_version,
                changed_keys=json.dumps(list(changed_keys)) if changed_keys else None,
            )
            .returning(a.c.id)
        ).scalar_one()
        return AuditEntry(
            int(new_id), tenant_id, at, actor[:200], action, env, circuit, from_version, to_version, tuple(changed_keys)
        )

    def audit_log(
        self, tenant_id: str, limit: int = 100, env: str | None = None, circuit: str | None = None
    ) -> list[AuditEntry]:
        """Uploads, deploys, promotions, rollbacks, undeploys and settings changes, newest first."""
        a = self._db.tables.audit
        query = sa.select(a).where(a.c.tenant_id == tenant_id)
        if env is not None:
            query = query.where(a.c.env == env)
        if circuit is not None:
            query = query.where(a.c.circuit == circuit)
        with self._db.read() as conn:
            rows = conn.execute(query.order_by(a.c.id.desc()).limit(page_size(limit))).all()
        return [_audit_entry(r) for r in rows]


def _audit_entry(row: Any) -> AuditEntry:
    return AuditEntry(
        int(row.id),
        row.tenant_id,
        row.at,
        row.actor,
        row.action,
        row.env,
        row.circuit,
        row.from_version,
        row.to_version,
        tuple(json.loads(row.changed_keys)) if row.changed_keys else (),
    )
