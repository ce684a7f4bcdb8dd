"""Webhook URL tokens are stored as their sha256, like API keys: the URL is shown once, when made.

The table is rebuilt (read, dropped, created, filled with the hashes) rather than altered, so no
dialect keeps the old column's values; ``Platform`` then scrubs the freed bytes from the files.

Revision ID: 0003
Revises: 0002
"""

from __future__ import annotations

import hashlib

import sqlalchemy as sa
from alembic import op

from circuit_host.migrations import table_prefix

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None


def upgrade() -> None:
    name = f"{table_prefix()}webhook_tokens"
    old = sa.table(
        name, sa.column("tenant_id"), sa.column("env"), sa.column("token"), sa.column("created_at", sa.DateTime)
    )
    rows = [dict(r._mapping) for r in op.get_bind().execute(sa.select(old))]
    op.drop_table(name)
    new = op.create_table(
        name,
        sa.Column("tenant_id", sa.String(64), primary_key=True),
        sa.Column("env", sa.String(16), primary_key=True),
        sa.Column("token_sha256", sa.String(64), nullable=False, unique=True),
        sa.Column("created_at", sa.DateTime, nullable=False),
    )
    op.bulk_insert(
        new,
        [
            {
                "tenant_id": r["tenant_id"],
                "env": r["env"],
                "token_sha256": hashlib.sha256(r["token"].encode()).hexdigest(),
                "created_at": r["created_at"],
            }
            for r in rows
        ],
    )


def downgrade() -> None:
    raise NotImplementedError("Circuit Script migrates forward only")
