"""The webhook inbox: verified deliveries, stored before they are applied.

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

ID = sa.BigInteger().with_variant(sa.Integer, "sqlite")


def upgrade() -> None:
    prefix = table_prefix()
    inbox = sa.Table(
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
        sa.Column("change", sa.Text, nullable=False),
        sa.Column("records", sa.Integer, nullable=False),
        sa.Column("state", sa.String(16), nullable=False),
        sa.Column("attempts", sa.Integer, nullable=False),
        sa.Column("next_attempt_at", sa.DateTime, nullable=False),
        sa.Column("last_error", sa.Text),
        sa.Column("execution_id", sa.String(64)),
        sa.Column("received_at", sa.DateTime, nullable=False),
        sa.Column("finished_at", sa.DateTime),
        sa.Index(f"{prefix}webhook_inbox_dedupe", "tenant_id", "source", "dedupe_key", "part", unique=True),
        sa.Index(f"{prefix}webhook_inbox_batch", "tenant_id", "env", "object", "action", "state", "id"),
        sa.Index(f"{prefix}webhook_inbox_tenant", "tenant_id", "state", "id"),
        sqlite_autoincrement=True,
    )
    create_missing(inbox)


def downgrade() -> None:
    raise NotImplementedError("Circuit Script migrates forward only")
