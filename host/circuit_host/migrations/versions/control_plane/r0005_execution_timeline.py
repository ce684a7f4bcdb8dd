"""Stored executions keep their timeline: each host call's and trigger run's start, duration and
nesting (``execution/execution_timeline.py``, JSON, at most 500 steps), for the dashboard's waterfall.

Revision ID: 0005
Revises: 0004
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from circuit_host.migrations import table_prefix

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column(f"{table_prefix()}executions", sa.Column("timeline", sa.Text, nullable=True))


def downgrade() -> None:
    raise NotImplementedError("Circuit Script migrates forward only")
