"""The CRM outbox as it was before migrations (commit ddfdd8c): create the tables that are missing.

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
    m = sa.MetaData()
    tables = [
        sa.Table(
            f"{prefix}outbox",
            m,
            sa.Column("id", sa.BigInteger().with_variant(sa.Integer, "sqlite"), primary_key=True, autoincrement=True),
            sa.Column("tenant", sa.String(255), nullable=False),
            sa.Column("crm", sa.String(32), nullable=False),
            sa.Column("operation", sa.String(16), nullable=False),
            sa.Column("object_name", sa.String(255), nullable=False),
            sa.Column("external_id", sa.String(255)),
            sa.Column("payload", sa.Text, nullable=False),
            sa.Column("row_count", sa.Integer, nullable=False),
            sa.Column("done", sa.Integer, nullable=False),
            sa.Column("status", sa.String(16), nullable=False),
            sa.Column("attempts", sa.Integer, nullable=False),
            sa.Column("next_attempt_at", sa.DateTime, nullable=False),
            sa.Column("claimed_until", sa.DateTime),
            sa.Column("last_error", sa.Text),
            sa.Column("created_at", sa.DateTime, nullable=False),
            sa.Column("sent_at", sa.DateTime),
            sa.Index(f"{prefix}outbox_queue", "tenant", "status", "id"),
        ),
        sa.Table(
            f"{prefix}id_map",
            m,
            sa.Column("tenant", sa.String(255), primary_key=True),
            sa.Column("provisional_id", sa.String(18), primary_key=True),
            sa.Column("entry_id", sa.BigInteger, nullable=False),
            sa.Column("real_id", sa.String(255)),
        ),
    ]
    create_missing(*tables)


def downgrade() -> None:
    raise NotImplementedError("Circuit Script migrates forward only")
