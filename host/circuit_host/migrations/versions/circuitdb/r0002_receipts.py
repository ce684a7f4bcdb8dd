"""Receipts: keys of work from outside (webhook inbox rows) that a records transaction applied.

A receipt is written in the transaction that applies the work, so a worker that crashes after
the commit but before telling the control plane finds it on its next attempt and applies nothing
twice (the records live in another database than the inbox in embedded mode).

Revision ID: 0002
Revises: 0001
"""

from __future__ import annotations

import sqlalchemy as sa

from circuit_host.migrations import create_missing

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    receipts = sa.Table(
        "circuitdb_receipts",
        sa.MetaData(),
        sa.Column("tenant", sa.String(200), primary_key=True),
        sa.Column("key", sa.String(200), primary_key=True),
        sa.Column("recorded_at", sa.DateTime, nullable=False),
    )
    create_missing(receipts)


def downgrade() -> None:
    raise NotImplementedError("Circuit Script migrates forward only")
