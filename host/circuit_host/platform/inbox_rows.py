"""The webhook inbox's rows: verified deliveries, stored durably before they are applied.

One row per normalised change (a change of more than 200 records is cut into parts). The dedupe
key (the sender's delivery id, or the hash of the signed body) is unique per tenant and source,
so of concurrent copies of one delivery exactly one transaction stores it. Rows are ``pending``
until a worker applies them (``applied``), or they run out of attempts (``dead``: the dead letter,
retried by hand). The table lives on the control-plane database, beside the job queue, so a row
and the job that applies it commit in one transaction (``server/webhook_inbox.py``).
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from enum import StrEnum
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from ..migrations import upgrade, webhook_inbox
from ..webhooks import Change
from .database import PlatformDatabase, page_size
from .models import Conflict, NotFound

ID = sa.BigInteger().with_variant(sa.Integer, "sqlite")


class InboxState(StrEnum):
    PENDING = "pending"
    APPLIED = "applied"
    DEAD = "dead"


def build_inbox_table(prefix: str) -> sa.Table:
    return sa.Table(
        f"{prefix}webhook_inbox",
        sa.MetaData(),
        sa.Column("id", ID, primary_key=True, autoincrement=True),
        sa.Column("tenant_id", sa.String(64), nullable=False),
        sa.Column("env", sa.String(16), nullable=False),
        sa.Column("source", sa.String(32), nullable=False),
        sa.Column("dedupe_key", sa.String(200), nullable=False),
        sa.Column("part", sa.Integer, nullable=False),
        sa.Column("object", sa.String(80), nullable=False),
        sa.Column("action", sa.String(16), nullable=False),
        sa.Column("change", sa.Text, nullable=False),  # records, changed fields, meta, occurred_at (JSON)
        sa.Column("records", sa.Integer, nullable=False),
        sa.Column("state", sa.String(16), nullable=False),
        sa.Column("attempts", sa.Integer, nullable=False),
        sa.Column("next_attempt_at", sa.DateTime, nullable=False),
        sa.Column("last_error", sa.Text),
        sa.Column("execution_id", sa.String(64)),
        sa.Column("received_at", sa.DateTime, nullable=False),
        sa.Column("finished_at", sa.DateTime),
        sqlite_autoincrement=True,
    )


@dataclass(frozen=True)
class InboxEntry:
    """What intake stores for one change (or one part of a large one)."""

    dedupe_key: str
    part: int
    change: Change


@dataclass(frozen=True)
class InboxRow:
    id: int
    tenant_id: str
    env: str
    source: str
    dedupe_key: str
    object: str
    action: str
    records: int
    state: InboxState
    attempts: int
    next_attempt_at: datetime
    last_error: str | None
    execution_id: str | None
    received_at: datetime
    finished_at: datetime | None
    change: Change


class Duplicate(Exception):
    """A dedupe key of the delivery is stored already: the caller's transaction must roll back."""


class InboxRows:
    """The inbox table on the control-plane database (its own migrations: ``versions/inbox``)."""

    def __init__(self, db: PlatformDatabase) -> None:
        self.db = db
        self.table = build_inbox_table(db.prefix)
        upgrade(db.engine, webhook_inbox(db.prefix))

    def insert(
        self, conn: Connection, tenant_id: str, env: str, source: str, entries: Sequence[InboxEntry]
    ) -> list[int]:
        """Store the entries in the caller's transaction; ``Duplicate`` if any dedupe key is taken."""
        now = _naive(self.db.now())
        ids = []
        for entry in entries:
            change = entry.change
            values = {
                "tenant_id": tenant_id,
                "env": env,
                "source": source[:32],
                "dedupe_key": entry.dedupe_key,
                "part": entry.part,
                "object": change.object,
                "action": change.action,
                "change": _change_json(change),
                "records": len(change.records),
                "state": InboxState.PENDING,
                "attempts": 0,
                "next_attempt_at": now,
                "received_at": now,
            }
            try:
                ids.append(
                    int(conn.execute(self.table.insert().values(**values).returning(self.table.c.id)).scalar_one())
                )
            except sa.exc.IntegrityError:
                raise Duplicate(entry.dedupe_key) from None
        return ids

    def next_batch(
        self, tenant_id: str, env: str, object_name: str, action: str, max_records: int, now: datetime
    ) -> list[InboxRow]:
        """The oldest due pending rows of one key and one source, up to ``max_records`` records
        (a first row with more is taken alone)."""
        t = self.table
        due = sa.and_(
            t.c.tenant_id == tenant_id,
            t.c.env == env,
            t.c.object == object_name,
            t.c.action == action,
            t.c.state == InboxState.PENDING,
            t.c.next_attempt_at <= _naive(now),
        )
        with self.db.read() as conn:
            rows = conn.execute(sa.select(t).where(due).order_by(t.c.id).limit(max_records)).all()
        batch: list[InboxRow] = []
        total = 0
        for row in rows:
            if batch and (row.source != batch[0].source or total + row.records > max_records):
                break
            batch.append(_row(row))
            total += row.records
        return batch

    def next_due(self, tenant_id: str, env: str, object_name: str, action: str) -> datetime | None:
        """When the earliest pending row of the key is due, or None when none waits."""
        t = self.table
        with self.db.read() as conn:
            found = conn.execute(
                sa.select(sa.func.min(t.c.next_attempt_at)).where(
                    t.c.tenant_id == tenant_id,
                    t.c.env == env,
                    t.c.object == object_name,
                    t.c.action == action,
                    t.c.state == InboxState.PENDING,
                )
            ).scalar()
        return None if found is None else _aware(found)

    def pending_keys(self) -> list[tuple[str, str, str, str]]:
        """Every (tenant, env, object, action) with pending rows: what a recovery sweep re-enqueues."""
        t = self.table
        with self.db.read() as conn:
            rows = conn.execute(
                sa.select(t.c.tenant_id, t.c.env, t.c.object, t.c.action)
                .where(t.c.state == InboxState.PENDING)
                .distinct()
            ).all()
        return [(r[0], r[1], r[2], r[3]) for r in rows]

    def mark_applied(self, ids: Sequence[int], execution_id: str | None) -> None:
        """Applied, whatever the row said before (a receipt in the records is the truth)."""
        t = self.table
        with self.db.write() as conn:
            conn.execute(
                t.update()
                .where(t.c.id.in_(list(ids)), t.c.state != InboxState.APPLIED)
                .values(
                    state=InboxState.APPLIED,
                    execution_id=execution_id,
                    finished_at=_naive(self.db.now()),
                    attempts=t.c.attempts + 1,
                )
            )

    def mark_failed(
        self, row_id: int, error: str, execution_id: str | None, max_attempts: int, delay: timedelta
    ) -> InboxState:
        """Count a failed attempt: pending again after ``delay``, or dead when out of attempts."""
        t = self.table
        now = self.db.now()
        with self.db.write() as conn:
            row = conn.execute(sa.select(t.c.attempts, t.c.state).where(t.c.id == row_id)).first()
            if row is None or row.state != InboxState.PENDING:
                return InboxState(row.state) if row is not None else InboxState.DEAD
            attempts = row.attempts + 1
            state = InboxState.DEAD if attempts >= max_attempts else InboxState.PENDING
            conn.execute(
                t.update()
                .where(t.c.id == row_id)
                .values(
                    state=state,
                    attempts=attempts,
                    last_error=error[:4000],
                    execution_id=execution_id,
                    next_attempt_at=_naive(now + delay),
                    finished_at=_naive(now) if state == InboxState.DEAD else None,
                )
            )
        return state

    def get(self, tenant_id: str, row_id: int) -> InboxRow | None:
        t = self.table
        with self.db.read() as conn:
            row = conn.execute(sa.select(t).where(t.c.id == row_id, t.c.tenant_id == tenant_id)).first()
        return None if row is None else _row(row)

    def list_rows(
        self,
        tenant_id: str,
        state: InboxState | None = None,
        env: str | None = None,
        before_id: int | None = None,
        limit: int = 100,
    ) -> list[InboxRow]:
        """Newest first; ``before_id`` pages back."""
        t = self.table
        query = sa.select(t).where(t.c.tenant_id == tenant_id).order_by(t.c.id.desc()).limit(page_size(limit))
        if state is not None:
            query = query.where(t.c.state == state)
        if env is not None:
            query = query.where(t.c.env == env)
        if before_id is not None:
            query = query.where(t.c.id < before_id)
        with self.db.read() as conn:
            return [_row(r) for r in conn.execute(query)]

    def retry(self, conn: Connection, tenant_id: str, row_id: int) -> InboxRow:
        """A dead row pending again, now, with its attempts reset (in the caller's transaction)."""
        t = self.table
        row = conn.execute(sa.select(t).where(t.c.id == row_id, t.c.tenant_id == tenant_id)).first()
        if row is None:
            raise NotFound(f"no inbox entry {row_id}")
        if row.state != InboxState.DEAD:
            raise Conflict(f"inbox entry {row_id} is {row.state}: only a dead one can be retried")
        conn.execute(
            t.update()
            .where(t.c.id == row_id)
            .values(state=InboxState.PENDING, attempts=0, next_attempt_at=_naive(self.db.now()), finished_at=None)
        )
        return _row(conn.execute(sa.select(t).where(t.c.id == row_id)).one())

    def purge(self, applied_before: datetime, dead_before: datetime) -> int:
        """Forget applied rows (and their dedupe keys) and dead ones older than these; how many."""
        t = self.table
        with self.db.write() as conn:
            return int(
                conn.execute(
                    t.delete().where(
                        sa.or_(
                            sa.and_(t.c.state == InboxState.APPLIED, t.c.finished_at < _naive(applied_before)),
                            sa.and_(t.c.state == InboxState.DEAD, t.c.finished_at < _naive(dead_before)),
                        )
                    )
                ).rowcount
            )


def _change_json(change: Change) -> str:
    return json.dumps(
        {
            "webhook_id": change.webhook_id,
            "occurred_at": change.occurred_at.isoformat() if change.occurred_at else None,
            "records": change.records,
            "changed_fields": change.changed_fields,
            "meta": change.meta,
        },
        separators=(",", ":"),
        default=str,
    )


def _row(row: Any) -> InboxRow:
    data = json.loads(row.change)
    change = Change(
        webhook_id=data["webhook_id"],
        occurred_at=datetime.fromisoformat(data["occurred_at"]) if data["occurred_at"] else None,
        object=row.object,
        action=row.action,
        records=data["records"],
        changed_fields=data["changed_fields"],
        source=row.source,
        meta=data["meta"],
    )
    return InboxRow(
        id=row.id,
        tenant_id=row.tenant_id,
        env=row.env,
        source=row.source,
        dedupe_key=row.dedupe_key,
        object=row.object,
        action=row.action,
        records=row.records,
        state=InboxState(row.state),
        attempts=row.attempts,
        next_attempt_at=_aware(row.next_attempt_at),
        last_error=row.last_error,
        execution_id=row.execution_id,
        received_at=_aware(row.received_at),
        finished_at=_aware(row.finished_at) if row.finished_at is not None else None,
        change=change,
    )


def _naive(moment: datetime) -> datetime:
    return moment.astimezone(UTC).replace(tzinfo=None) if moment.tzinfo else moment


def _aware(moment: datetime) -> datetime:
    return moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment.astimezone(UTC)
