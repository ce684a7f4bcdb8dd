"""Outbox entries name the execution that queued them, so an execution can show what became of its writes.

Revision ID: 0002
Revises: 0001
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from circuit_host.migrations import table_prefix

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    prefix = table_prefix()
    op.add_column(f"{prefix}outbox", sa.Column("execution_id", sa.String(64), nullable=True))
    op.create_index(f"{prefix}outbox_execution", f"{prefix}outbox", ["execution_id"])


def downgrade() -> None:
    raise NotImplementedError("Circuit Script migrates forward only")
