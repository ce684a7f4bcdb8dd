"""${message}

Revision ID: ${up_revision}
Revises: ${down_revision | comma,n}
Create Date: ${create_date}
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op
${imports if imports else ""}
from circuit_host.migrations import table_prefix

revision = "${up_revision}"
down_revision = ${repr(down_revision)}
branch_labels = None
depends_on = None


def upgrade() -> None:
    prefix = table_prefix()  # of every table name: op.add_column(f"{prefix}tenants", sa.Column(...))
    raise NotImplementedError("write the migration")


def downgrade() -> None:
    raise NotImplementedError("Circuit Script migrates forward only")
