"""The job outbox: jobs an execution asked for (``jobs.enqueue``), written in its records transaction.

A row commits with the execution's records and is deleted once its job is on the queue; a process
that dies in between leaves it for the relay (``server/async_circuits.py``), which enqueues it with
the same idempotency key, so the job exists once whether the hand-over or the relay got there first.

Revision ID: 0003
Revises: 0002
"""

from __future__ import annotations

import sqlalchemy as sa

from circuit_host.migrations import create_missing

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None


def upgrade() -> None:
    outbox = sa.Table(
        "circuitdb_job_outbox",
        sa.MetaData(),
        sa.Column("tenant", sa.String(200), primary_key=True),
        sa.Column("key", sa.String(200), primary_key=True),
        sa.Column("circuit", sa.String(64), nullable=False),
        sa.Column("payload", sa.Text, nullable=False),
        sa.Column("recorded_at", sa.DateTime, nullable=False),
    )
    create_missing(outbox)


def downgrade() -> None:
    raise NotImplementedError("Circuit Script migrates forward only")
