"""The job queue: the embedded queue's jobs, Procrastinate's companion details, periodic schedules.

Revision ID: 0001
Revises:
"""

from __future__ import annotations

import sqlalchemy as sa

from circuit_host.migrations import create_missing, table_prefix

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None

TENANT = sa.String(64)
LABEL = sa.String(200)
ID = sa.BigInteger().with_variant(sa.Integer, "sqlite")


def upgrade() -> None:
    create_missing(*tables(table_prefix()))


def downgrade() -> None:
    raise NotImplementedError("Circuit Script migrates forward only")


def tables(prefix: str) -> list[sa.Table]:
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
    return [jobs, details, schedules]
