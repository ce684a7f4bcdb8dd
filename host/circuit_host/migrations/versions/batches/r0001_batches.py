"""Batch circuits: one row per batch, one per chunk (its keyset bounds and outcome).

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


def upgrade() -> None:
    prefix = table_prefix()
    batches = sa.Table(
        f"{prefix}batches",
        sa.MetaData(),
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
        sa.Index(f"{prefix}batches_tenant", "tenant_id", "created_at"),
    )
    chunks = sa.Table(
        f"{prefix}batch_chunks",
        sa.MetaData(),
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
    create_missing(batches)
    create_missing(chunks)


def downgrade() -> None:
    raise NotImplementedError("Circuit Script migrates forward only")
