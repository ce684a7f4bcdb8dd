"""Batch circuits' progress: one row per batch, one per chunk.

A chunk row fixes the chunk's keyset bounds (``after_id`` < Id <= ``last_id``) the first time a
worker reads it, before the circuit runs: an attempt re-run after a crash reads the same records
and the next chunk starts where this one ended, so none is skipped. Its ``state`` is set once the
execution ended (``ok`` or ``failed``); the batch's counters are sums over its chunks, so recording
an outcome twice counts it once. The tables live on the control-plane database beside the jobs, so
a batch and its first job commit in one transaction (``server/batch_circuits.py``).
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from enum import StrEnum
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from ..migrations import batch_runs, upgrade
from .database import PlatformDatabase, page_size


class BatchState(StrEnum):
    RUNNING = "running"
    FINISHED = "finished"
    FAILED = "failed"  # start gave no query, start or finish did not end ok, or their job died (``error``)
    CANCELLED = "cancelled"


class ChunkState(StrEnum):
    RUNNING = "running"  # bounds fixed, outcome not recorded yet
    OK = "ok"
    FAILED = "failed"


def build_batch_tables(prefix: str) -> tuple[sa.Table, sa.Table]:
    metadata = sa.MetaData()
    batches = sa.Table(
        f"{prefix}batches",
        metadata,
        sa.Column("id", sa.String(32), primary_key=True),
        sa.Column("tenant_id", sa.String(64), nullable=False),
        sa.Column("env", sa.String(16), nullable=False),
        sa.Column("circuit", sa.String(64), nullable=False),
        sa.Column("version", sa.String(64), nullable=False),
        sa.Column("query", sa.Text),
        sa.Column("scope", sa.Integer, nullable=False),
        sa.Column("total", sa.Integer),
        sa.Column("payload", sa.Text, nullable=False),
        sa.Column("state", sa.String(16), nullable=False),
        sa.Column("error", sa.Text),
        sa.Column("created_at", sa.DateTime, nullable=False),
        sa.Column("finished_at", sa.DateTime),
    )
    chunks = sa.Table(
        f"{prefix}batch_chunks",
        metadata,
        sa.Column("batch_id", sa.String(32), primary_key=True),
        sa.Column("n", sa.Integer, primary_key=True, autoincrement=False),
        sa.Column("after_id", sa.String(64)),
        sa.Column("last_id", sa.String(64)),
        sa.Column("records", sa.Integer, nullable=False),
        sa.Column("state", sa.String(16), nullable=False),
        sa.Column("execution_id", sa.String(64)),
        sa.Column("error", sa.Text),
        sa.Column("updated_at", sa.DateTime, nullable=False),
    )
    return batches, chunks


@dataclass(frozen=True)
class ChunkRow:
    batch_id: str
    n: int
    after_id: str | None  # exclusive lower bound; None: from the first record
    last_id: str | None  # inclusive upper bound; None: the chunk was empty (the query is exhausted)
    records: int
    state: ChunkState
    execution_id: str | None
    error: str | None


@dataclass(frozen=True)
class BatchSummary:
    """What ``finish`` is told, and what progress shows: sums over the chunks recorded so far."""

    chunks_ok: int
    chunks_failed: int
    records_processed: int  # in chunks that ended ok
    records_failed: int  # in chunks that did not
    last_id: str | None  # the upper bound of the newest chunk

    def as_event(self) -> dict[str, Any]:
        return {
            "chunks_ok": self.chunks_ok,
            "chunks_failed": self.chunks_failed,
            "records_processed": self.records_processed,
            "records_failed": self.records_failed,
        }


@dataclass(frozen=True)
class BatchRow:
    id: str
    tenant_id: str
    env: str
    circuit: str
    version: str
    query: str | None
    scope: int
    total: int | None  # the query's count when the batch started (records may change meanwhile)
    payload: Any
    state: BatchState
    error: str | None
    created_at: datetime
    finished_at: datetime | None
    summary: BatchSummary


class BatchRows:
    """The batch tables on the control-plane database (their own migrations: ``versions/batches``)."""

    def __init__(self, db: PlatformDatabase) -> None:
        self.db = db
        self.batches, self.chunks = build_batch_tables(db.prefix)
        upgrade(db.engine, batch_runs(db.prefix))

    def _now(self) -> datetime:
        moment = self.db.now()
        return moment.astimezone(UTC).replace(tzinfo=None) if moment.tzinfo else moment

    def insert(
        self,
        conn: Connection,
        batch_id: str,
        tenant_id: str,
        env: str,
        circuit: str,
        version: str,
        scope: int,
        query: str | None,
        payload: Any,
    ) -> None:
        """A running batch, in the caller's transaction (which enqueues its first job)."""
        conn.execute(
            self.batches.insert().values(
                id=batch_id,
                tenant_id=tenant_id,
                env=env,
                circuit=circuit,
                version=version,
                query=query,
                scope=scope,
                payload=json.dumps(payload),
                state=BatchState.RUNNING,
                created_at=self._now(),
            )
        )

    @contextmanager
    def _using(self, connection: Connection | None, *, write: bool) -> Iterator[Connection]:
        """The caller's open transaction, or one of our own."""
        if connection is not None:
            yield connection
            return
        with self.db.write() if write else self.db.read() as conn:
            yield conn

    def get(self, tenant_id: str, batch_id: str, *, connection: Connection | None = None) -> BatchRow | None:
        """The caller's tenant's batch (another tenant's is ``None``)."""
        b = self.batches.c
        with self._using(connection, write=False) as conn:
            row = conn.execute(sa.select(self.batches).where(b.id == batch_id, b.tenant_id == tenant_id)).first()
            return None if row is None else self._row(conn, row._mapping)

    def list_batches(self, tenant_id: str, limit: int = 50) -> list[BatchRow]:
        b = self.batches.c
        with self.db.read() as conn:
            rows = conn.execute(
                sa.select(self.batches)
                .where(b.tenant_id == tenant_id)
                .order_by(b.created_at.desc(), b.id.desc())
                .limit(page_size(limit))
            ).all()
            return [self._row(conn, r._mapping) for r in rows]

    def set_query(self, batch_id: str, query: str, total: int | None) -> None:
        with self.db.write() as conn:
            conn.execute(self.batches.update().where(self.batches.c.id == batch_id).values(query=query, total=total))

    def end(
        self, batch_id: str, state: BatchState, error: str | None = None, *, connection: Connection | None = None
    ) -> bool:
        """Move a running batch to ``state``; ``False`` if it had ended already (e.g. cancelled)."""
        b = self.batches.c
        with self._using(connection, write=True) as conn:
            done = conn.execute(
                self.batches.update()
                .where(b.id == batch_id, b.state == BatchState.RUNNING)
                .values(state=state, error=error, finished_at=self._now())
            )
            return bool(done.rowcount)

    def chunk(self, batch_id: str, n: int, *, connection: Connection | None = None) -> ChunkRow | None:
        c = self.chunks.c
        with self._using(connection, write=False) as conn:
            row = conn.execute(sa.select(self.chunks).where(c.batch_id == batch_id, c.n == n)).first()
        if row is None:
            return None
        m = row._mapping
        return ChunkRow(
            m["batch_id"], m["n"], m["after_id"], m["last_id"], m["records"], ChunkState(m["state"]),
            m["execution_id"], m["error"],
        )  # fmt: skip

    def fix_chunk(self, batch_id: str, n: int, after_id: str | None, last_id: str | None, records: int) -> ChunkRow:
        """Record the chunk's bounds unless an earlier attempt did; the row that holds either way."""
        values = {
            "batch_id": batch_id, "n": n, "after_id": after_id, "last_id": last_id, "records": records,
            "state": ChunkState.RUNNING, "updated_at": self._now(),
        }  # fmt: skip
        with self.db.write() as conn:
            conn.execute(self.db.insert_ignore(self.chunks, values, ["batch_id", "n"]))
        fixed = self.chunk(batch_id, n)
        assert fixed is not None
        return fixed

    def end_chunk(
        self,
        batch_id: str,
        n: int,
        state: ChunkState,
        execution_id: str | None,
        error: str | None = None,
        *,
        connection: Connection | None = None,
    ) -> None:
        """The chunk's outcome; a later call for the same chunk keeps the first outcome's execution
        unless it names one (a re-run that found the chunk committed knows no execution)."""
        c = self.chunks.c
        values: dict[str, Any] = {"state": state, "error": error, "updated_at": self._now()}
        if execution_id is not None:
            values["execution_id"] = execution_id
        with self._using(connection, write=True) as conn:
            conn.execute(self.chunks.update().where(c.batch_id == batch_id, c.n == n).values(**values))

    def summary(self, batch_id: str) -> BatchSummary:
        with self.db.read() as conn:
            return self._summary(conn, batch_id)

    def _summary(self, conn: Connection, batch_id: str) -> BatchSummary:
        c = self.chunks.c
        counts = {
            state: (chunks, records)
            for state, chunks, records in conn.execute(
                sa.select(c.state, sa.func.count(), sa.func.coalesce(sa.func.sum(c.records), 0))
                .where(c.batch_id == batch_id, c.state != ChunkState.RUNNING)
                .group_by(c.state)
            ).all()
        }
        last = conn.execute(
            sa.select(c.last_id).where(c.batch_id == batch_id, c.last_id.is_not(None)).order_by(c.n.desc()).limit(1)
        ).scalar()
        ok = counts.get(ChunkState.OK, (0, 0))
        failed = counts.get(ChunkState.FAILED, (0, 0))
        return BatchSummary(int(ok[0]), int(failed[0]), int(ok[1]), int(failed[1]), last)

    def _row(self, conn: Connection, m: Any) -> BatchRow:
        return BatchRow(
            id=m["id"],
            tenant_id=m["tenant_id"],
            env=m["env"],
            circuit=m["circuit"],
            version=m["version"],
            query=m["query"],
            scope=m["scope"],
            total=m["total"],
            payload=json.loads(m["payload"]),
            state=BatchState(m["state"]),
            error=m["error"],
            created_at=_aware(m["created_at"]),
            finished_at=_aware(m["finished_at"]) if m["finished_at"] else None,
            summary=self._summary(conn, m["id"]),
        )


def _aware(moment: datetime) -> datetime:
    return moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment.astimezone(UTC)
