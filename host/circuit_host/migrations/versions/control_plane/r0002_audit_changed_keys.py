"""Audit entries name the settings a change touched (names only, never values).

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
    op.add_column(f"{table_prefix()}audit", sa.Column("changed_keys", sa.Text(), nullable=True))


def downgrade() -> None:
    raise NotImplementedError("Circuit Script migrates forward only")
