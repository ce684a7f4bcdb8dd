"""The control plane as it was before migrations (commit ddfdd8c): create the tables that are missing.

A database made by that code has them all and is adopted unchanged.

Revision ID: 0001
Revises:
"""

from __future__ import annotations

from typing import Any

import sqlalchemy as sa

from circuit_host.migrations import create_missing, table_prefix

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None


def upgrade() -> None:
    create_missing(*tables(table_prefix()))


def downgrade() -> None:
    raise NotImplementedError("Circuit Script migrates forward only")


def tables(prefix: str) -> list[sa.Table]:
    m = sa.MetaData()
    tenant = sa.String(64)

    def table(name: str, *columns: Any) -> sa.Table:
        return sa.Table(prefix + name, m, *columns)

    return [
        table(
            "tenants",
            sa.Column("id", tenant, primary_key=True),
            sa.Column("name", sa.String(200), nullable=False),
            sa.Column("settings", sa.Text, nullable=False),
            sa.Column("created_at", sa.DateTime, nullable=False),
        ),
        table(
            "api_keys",
            sa.Column("id", sa.String(32), primary_key=True),
            sa.Column("tenant_id", tenant, nullable=False, index=True),
            sa.Column("label", sa.String(200), nullable=False),
            sa.Column("scopes", sa.String(100), nullable=False),
            sa.Column("secret_sha256", sa.String(64), nullable=False),
            sa.Column("created_at", sa.DateTime, nullable=False),
            sa.Column("revoked_at", sa.DateTime),
            sa.Column("last_used_at", sa.DateTime),
        ),
        table(
            "webhook_tokens",
            sa.Column("tenant_id", tenant, primary_key=True),
            sa.Column("env", sa.String(16), primary_key=True),
            sa.Column("token", sa.String(100), nullable=False, unique=True),
            sa.Column("created_at", sa.DateTime, nullable=False),
        ),
        table(
            "bundles",
            sa.Column("tenant_id", tenant, primary_key=True),
            sa.Column("sha256", sa.String(64), primary_key=True),
            sa.Column("name", sa.String(63), nullable=False),
            sa.Column("version", sa.String(100), nullable=False),
            sa.Column("size", sa.Integer, nullable=False),
            sa.Column("manifest", sa.Text, nullable=False),
            sa.Column("data", sa.LargeBinary, nullable=False),
            sa.Column("uploaded_at", sa.DateTime, nullable=False),
            sa.Column("uploaded_by", sa.String(200), nullable=False),
            sa.UniqueConstraint("tenant_id", "name", "version", name=prefix + "bundles_name_version"),
        ),
        table(
            "deployments",
            sa.Column("tenant_id", tenant, primary_key=True),
            sa.Column("env", sa.String(16), primary_key=True),
            sa.Column("name", sa.String(63), primary_key=True),
            sa.Column("version", sa.String(100), nullable=False),
            sa.Column("sha256", sa.String(64), nullable=False),
            sa.Column("deployed_at", sa.DateTime, nullable=False),
            sa.Column("deployed_by", sa.String(200), nullable=False),
        ),
        table(
            "generations",
            sa.Column("tenant_id", tenant, primary_key=True),
            sa.Column("env", sa.String(16), primary_key=True),
            sa.Column("generation", sa.BigInteger, nullable=False),
        ),
        table(
            "audit",
            sa.Column("id", sa.BigInteger().with_variant(sa.Integer, "sqlite"), primary_key=True, autoincrement=True),
            sa.Column("tenant_id", tenant, nullable=False),
            sa.Column("at", sa.DateTime, nullable=False),
            sa.Column("actor", sa.String(200), nullable=False),
            sa.Column("action", sa.String(16), nullable=False),
            sa.Column("env", sa.String(16)),
            sa.Column("circuit", sa.String(63), nullable=False),
            sa.Column("from_version", sa.String(100)),
            sa.Column("to_version", sa.String(100)),
            sa.Index(prefix + "audit_tenant", "tenant_id", "id"),
        ),
        table(
            "executions",
            sa.Column("id", sa.String(64), primary_key=True),
            sa.Column("tenant_id", tenant, nullable=False),
            sa.Column("env", sa.String(16), nullable=False),
            sa.Column("circuit", sa.String(63), nullable=False),
            sa.Column("version", sa.String(100), nullable=False),
            sa.Column("trigger", sa.String(200), nullable=False),
            sa.Column("status", sa.String(32), nullable=False),
            sa.Column("error", sa.Text),
            sa.Column("usage", sa.Text, nullable=False),
            sa.Column("duration_ms", sa.Float, nullable=False),
            sa.Column("started_at", sa.DateTime, nullable=False),
            sa.Column("debug_log", sa.Text, nullable=False),
            sa.Index(prefix + "executions_tenant_time", "tenant_id", "started_at", "id"),
        ),
        table(
            "webhook_ids",
            sa.Column("tenant_id", tenant, primary_key=True),
            sa.Column("source", sa.String(32), primary_key=True),
            sa.Column("webhook_id", sa.String(128), primary_key=True),
            sa.Column("expires_at", sa.DateTime, nullable=False),
            sa.Index(prefix + "webhook_ids_expiry", "tenant_id", "expires_at"),
        ),
        table(
            "last_seen",
            sa.Column("tenant_id", tenant, primary_key=True),
            sa.Column("env", sa.String(16), primary_key=True),
            sa.Column("object", sa.String(80), primary_key=True),
            sa.Column("record_id", sa.String(100), primary_key=True),
            sa.Column("record", sa.Text, nullable=False),
            sa.Column("updated_at", sa.DateTime, nullable=False),
        ),
        table(
            "gate_runs",
            sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
            sa.Column("tenant_id", tenant, nullable=False),
            sa.Column("at", sa.DateTime, nullable=False),
            sa.Column("actor", sa.String(200), nullable=False),
            sa.Column("env", sa.String(16), nullable=False),
            sa.Column("circuit", sa.String(63), nullable=False),
            sa.Column("version", sa.String(100), nullable=False),
            sa.Column("passed", sa.Boolean, nullable=False),
            sa.Column("coverage", sa.Float),
            sa.Column("detail", sa.Text, nullable=False),
            sa.Column("audit_id", sa.Integer),  # the deploy or promotion it let through, if any
            sa.Index(prefix + "gate_runs_tenant", "tenant_id", "id"),
        ),
    ]
