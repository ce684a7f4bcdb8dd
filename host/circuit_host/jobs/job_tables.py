"""The job queue's tables, on the control-plane database (prefix ``cs_`` by default).

``jobs`` is the embedded queue itself. ``job_details`` sits beside Procrastinate's
``procrastinate_jobs`` in fleet mode and holds what Procrastinate has no column for (tenant,
circuit, environment, idempotency key, last error, execution link). ``job_schedules`` holds each
periodic schedule's last enqueued tick, in both modes. Created and upgraded by the ``jobs``
migrations (``migrations/versions/jobs/``).
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime

import sqlalchemy as sa
from sqlalchemy.engine import Connection, Engine

TENANT = sa.String(64)
LABEL = sa.String(200)
ID = sa.BigInteger().with_variant(sa.Integer, "sqlite")  # SQLite: INTEGER PRIMARY KEY is the rowid


class QueueDatabase:
    """What both backends do with their engine: write transactions and closing."""

    engine: Engine
    _closed: bool

    def close(self) -> None:
        if not self._closed:
            self._closed = True
            self.engine.dispose()

    @contextmanager
    def write(self) -> Iterator[Connection]:
        """A transaction; on SQLite holding the write lock from the start."""
        if self._closed:
            raise RuntimeError("job queue is closed")
        with self.engine.connect() as conn:
            conn.exec_driver_sql("BEGIN IMMEDIATE" if conn.dialect.name == "sqlite" else "BEGIN")
            try:
                yield conn
            except BaseException:
                conn.exec_driver_sql("ROLLBACK")
                raise
            conn.exec_driver_sql("COMMIT")


@dataclass(frozen=True)
class JobTables:
    metadata: sa.MetaData
    jobs: sa.Table
    details: sa.Table
    schedules: sa.Table


def build_job_tables(prefix: str) -> JobTables:
    m = sa.MetaData()
    jobs = sa.Table(
        f"{prefix}jobs",
        m,
        sa.Column("id", ID, primary_key=True, autoincrement=True),
        sa.Column("kind", sa.String(64), nullable=False),
        sa.Column("tenant_id", TENANT, nullable=False),
        sa.Column("circuit", LABEL),
        sa.Column("env", LABEL),
        sa.Column("payload", sa.Text, nullable=False),
        sa.Column("state", sa.String(16), nullable=False),
        sa.Column("attempts", sa.Integer, nullable=False),
        sa.Column("retry", sa.Text, nullable=False),  # RetryPolicy as JSON
        sa.Column("run_at", sa.DateTime, nullable=False),
        sa.Column("priority", sa.Integer, nullable=False),
        sa.Column("queueing_lock", LABEL),
        sa.Column("lock", LABEL),
        sa.Column("key", LABEL),
        sa.Column("created_at", sa.DateTime, nullable=False),
        sa.Column("finished_at", sa.DateTime),
        sa.Column("last_error", sa.Text),
        sa.Column("execution_id", sa.String(64)),
        sa.Column("cancel_requested", sa.Boolean, nullable=False),
        sa.Column("lease_token", sa.String(32)),
        sa.Column("lease_expires_at", sa.DateTime),
        sa.Index(f"{prefix}jobs_claim", "state", "priority", "run_at"),
        sa.Index(f"{prefix}jobs_tenant", "tenant_id", "id"),
        sa.Index(f"{prefix}jobs_key", "tenant_id", "key", unique=True),
        sa.Index(
            f"{prefix}jobs_queueing_lock",
            "queueing_lock",
            unique=True,
            sqlite_where=sa.text("state = 'todo'"),
            postgresql_where=sa.text("state = 'todo'"),
        ),
        sa.Index(
            f"{prefix}jobs_running_lock",
            "lock",
            unique=True,
            sqlite_where=sa.text("state = 'doing'"),
            postgresql_where=sa.text("state = 'doing'"),
        ),
        sqlite_autoincrement=True,  # ids of purged jobs are not handed out again
    )
    details = sa.Table(
        f"{prefix}job_details",
        m,
        sa.Column("job_id", sa.BigInteger, primary_key=True, autoincrement=False),
        sa.Column("kind", sa.String(64), nullable=False),
        sa.Column("tenant_id", TENANT, nullable=False),
        sa.Column("circuit", LABEL),
        sa.Column("env", LABEL),
        sa.Column("key", LABEL),
        sa.Column("retry", sa.Text, nullable=False),
        sa.Column("created_at", sa.DateTime, nullable=False),
        sa.Column("last_error", sa.Text),
        sa.Column("execution_id", sa.String(64)),
        sa.Index(f"{prefix}job_details_tenant", "tenant_id", "job_id"),
        sa.Index(f"{prefix}job_details_key", "tenant_id", "key", unique=True),
    )
    schedules = sa.Table(
        f"{prefix}job_schedules",
        m,
        sa.Column("schedule_id", LABEL, primary_key=True),
        sa.Column("last_tick", sa.DateTime, nullable=False),
    )
    return JobTables(m, jobs, details, schedules)


def claim_tick(conn: Connection, schedules: sa.Table, schedule_id: str, tick: datetime) -> bool:
    """Record ``tick`` as the schedule's newest, in the caller's transaction; False if it already was (or later)."""
    stored = to_db(tick)
    updated = conn.execute(
        schedules.update()
        .where(schedules.c.schedule_id == schedule_id, schedules.c.last_tick < stored)
        .values(last_tick=stored)
    ).rowcount
    if updated:
        return True
    exists = conn.execute(sa.select(schedules.c.last_tick).where(schedules.c.schedule_id == schedule_id)).first()
    if exists is not None:
        return False
    conn.exec_driver_sql("SAVEPOINT circuit_tick")
    try:
        conn.execute(schedules.insert().values(schedule_id=schedule_id, last_tick=stored))
    except sa.exc.IntegrityError:
        conn.exec_driver_sql("ROLLBACK TO SAVEPOINT circuit_tick")
        return False  # another process recorded the schedule's first tick at the same moment
    finally:
        conn.exec_driver_sql("RELEASE SAVEPOINT circuit_tick")
    return True


def to_db(moment: datetime) -> datetime:
    """Times are stored as naive UTC on both databases."""
    return moment.astimezone(UTC).replace(tzinfo=None)


def from_db(moment: datetime | None) -> datetime | None:
    if moment is None:
        return None
    return moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment.astimezone(UTC)
