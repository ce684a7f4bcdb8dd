"""Stored executions keep their trace id (32 hex digits), to find an execution's spans and back.

Revision ID: 0004
Revises: 0003
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from circuit_host.migrations import table_prefix

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column(f"{table_prefix()}executions", sa.Column("trace_id", sa.String(32), nullable=True))


def downgrade() -> None:
    raise NotImplementedError("Circuit Script migrates forward only")
