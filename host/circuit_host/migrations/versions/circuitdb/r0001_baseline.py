"""CircuitDB's metadata as it was before migrations (commit ddfdd8c): ``circuitdb_schema``, if missing.

Each tenant's record tables follow its schema and are created and altered by CircuitDB
itself; only the definitions table is migrated here.

Revision ID: 0001
Revises:
"""

from __future__ import annotations

import sqlalchemy as sa

from circuit_host.migrations import create_missing

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None


def upgrade() -> None:
    definitions = sa.Table(
        "circuitdb_schema",
        sa.MetaData(),
        sa.Column("tenant", sa.String(200), primary_key=True),
        sa.Column("object", sa.String(64), primary_key=True),
        sa.Column("field", sa.String(64), primary_key=True),  # "" for the object itself
        sa.Column("definition", sa.Text, nullable=False),  # JSON
    )
    create_missing(definitions)


def downgrade() -> None:
    raise NotImplementedError("Circuit Script migrates forward only")
