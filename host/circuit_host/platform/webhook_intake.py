"""What the webhook endpoints remember between deliveries: ids for replay protection, last-seen records.

``<prefix>webhook_ids`` holds the delivery ids that versions before the webhook inbox claimed (each
with its replay window). The inbox keeps its own dedupe keys, and consults these at intake
(``delivered_before``), so a delivery the previous version applied is still a duplicate after an
upgrade, until its window ends.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from datetime import timedelta
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from ..errors import Rejected
from .database import PlatformDatabase, check_env
from .tenants import sha256_hex

_MAX_WEBHOOK_ID = 128
_IN_CHUNK = 500


class WebhookIntake:
    """Delivered webhook ids (a replay is refused) and the last version of each record a CRM sent."""

    def __init__(self, db: PlatformDatabase) -> None:
        self._db = db

    def remember_webhook_id(self, tenant_id: str, source: str, webhook_id: str, ttl_s: float) -> bool:
        """Record a delivered webhook id; False if it was already seen within its TTL (a replay)."""
        if not webhook_id:
            raise Rejected("webhook id must be non-empty")
        w = self._db.tables.webhook_ids
        now = self._db.now()
        with self._db.read() as conn:
            conn.execute(w.delete().where((w.c.tenant_id == tenant_id) & (w.c.expires_at <= now)))
            try:
                conn.execute(
                    w.insert().values(
                        tenant_id=tenant_id,
                        source=source[:32],
                        webhook_id=_stored_id(webhook_id),
                        expires_at=now + timedelta(seconds=ttl_s),
                    )
                )
            except sa.exc.IntegrityError:
                return False
        return True

    def delivered_before(self, conn: Connection, tenant_id: str, source: str, webhook_ids: Sequence[str]) -> bool:
        """Whether any of these ids (the sender's delivery id, or ``sha256:`` of the signed body) was
        claimed by a version before the inbox and is still in its replay window; in the caller's transaction."""
        w = self._db.tables.webhook_ids
        stored = list(dict.fromkeys(_stored_id(i) for i in webhook_ids if i))
        if not stored:
            return False
        found = conn.execute(
            sa.select(w.c.webhook_id)
            .where((w.c.tenant_id == tenant_id) & (w.c.source == source[:32]) & w.c.webhook_id.in_(stored))
            .where(w.c.expires_at > self._db.now())
            .limit(1)
        ).first()
        return found is not None

    def purge_expired_webhook_ids(self) -> int:
        """Forget claims whose replay window ended; how many."""
        w = self._db.tables.webhook_ids
        with self._db.write() as conn:
            return int(conn.execute(w.delete().where(w.c.expires_at <= self._db.now())).rowcount)

    def forget_webhook_id(self, tenant_id: str, source: str, webhook_id: str) -> None:
        """Release a claimed id: the delivery failed, so the sender's retry must be processed."""
        w = self._db.tables.webhook_ids
        with self._db.write() as conn:
            conn.execute(w.delete().where((w.c.tenant_id == tenant_id) & (w.c.webhook_id == _stored_id(webhook_id))))

    def last_seen(self, tenant_id: str, env: str, object_name: str, ids: Sequence[str]) -> dict[str, dict[str, Any]]:
        """The last version of each record the host saw, by id (GoHighLevel sends no prior values)."""
        check_env(env)
        s = self._db.tables.last_seen
        found: dict[str, dict[str, Any]] = {}
        unique = list(dict.fromkeys(ids))
        with self._db.read() as conn:
            for start in range(0, len(unique), _IN_CHUNK):
                rows = conn.execute(
                    sa.select(s.c.record_id, s.c.record).where(
                        (s.c.tenant_id == tenant_id)
                        & (s.c.env == env)
                        & (s.c.object == object_name.lower())
                        & s.c.record_id.in_(unique[start : start + _IN_CHUNK])
                    )
                )
                found.update({r.record_id: json.loads(r.record) for r in rows})
        return found

    def remember_records(
        self, tenant_id: str, env: str, object_name: str, records: Sequence[Mapping[str, Any]], id_field: str = "Id"
    ) -> None:
        """Keep these records as the last-seen versions (each must carry ``id_field``)."""
        check_env(env)
        now = self._db.now()
        rows: dict[str, dict[str, Any]] = {}  # by id: the last version of a record wins
        for record in records:
            record_id = record.get(id_field)
            if not isinstance(record_id, str) or not record_id:
                raise Rejected(f"record has no {id_field}")
            rows[record_id] = {
                "tenant_id": tenant_id,
                "env": env,
                "object": object_name.lower(),
                "record_id": record_id,
                "record": json.dumps(record, default=str),
                "updated_at": now,
            }
        if not rows:
            return
        statement = self._db.upsert_many(
            self._db.tables.last_seen, ["tenant_id", "env", "object", "record_id"], ["record", "updated_at"]
        )
        with self._db.write() as conn:
            conn.execute(statement, list(rows.values()))

    def forget_records(self, tenant_id: str, env: str, object_name: str, ids: Sequence[str]) -> None:
        """Drop last-seen versions, e.g. after a delete."""
        check_env(env)
        s = self._db.tables.last_seen
        with self._db.write() as conn:
            for start in range(0, len(ids), _IN_CHUNK):
                conn.execute(
                    s.delete().where(
                        (s.c.tenant_id == tenant_id)
                        & (s.c.env == env)
                        & (s.c.object == object_name.lower())
                        & s.c.record_id.in_(list(ids[start : start + _IN_CHUNK]))
                    )
                )


def _stored_id(webhook_id: str) -> str:
    """Ids longer than the column are stored by their hash."""
    return webhook_id if len(webhook_id) <= _MAX_WEBHOOK_ID else "sha256:" + sha256_hex(webhook_id)
