"""The platform's tables (prefix ``cs_`` by default), shared by every tenant and filtered by ``tenant_id``."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Dialect


class UtcDateTime(sa.types.TypeDecorator[datetime]):
    """Aware UTC datetimes on both dialects (SQLite keeps no zone, so naive UTC is stored)."""

    impl = sa.DateTime
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("naive datetime: pass an aware (UTC) datetime")
        return value.astimezone(UTC).replace(tzinfo=None)

    def process_result_value(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        return None if value is None else value.replace(tzinfo=UTC)


@dataclass(frozen=True)
class Tables:
    metadata: sa.MetaData
    tenants: sa.Table
    api_keys: sa.Table
    webhook_tokens: sa.Table
    bundles: sa.Table
    deployments: sa.Table
    generations: sa.Table
    audit: sa.Table
    executions: sa.Table
    webhook_ids: sa.Table
    last_seen: sa.Table
    gate_runs: sa.Table


def build_tables(prefix: str = "cs_") -> Tables:
    m = sa.MetaData()
    tenant = sa.String(64)

    def table(name: str, *columns: Any) -> sa.Table:
        return sa.Table(prefix + name, m, *columns)

    return Tables(
        metadata=m,
        tenants=table(
            "tenants",
            sa.Column("id", tenant, primary_key=True),
            sa.Column("name", sa.String(200), nullable=False),
            sa.Column("settings", sa.Text, nullable=False),
            sa.Column("created_at", UtcDateTime, nullable=False),
        ),
        api_keys=table(
            "api_keys",
            sa.Column("id", sa.String(32), primary_key=True),
            sa.Column("tenant_id", tenant, nullable=False, index=True),
            sa.Column("label", sa.String(200), nullable=False),
            sa.Column("scopes", sa.String(100), nullable=False),
            sa.Column("secret_sha256", sa.String(64), nullable=False),
            sa.Column("created_at", UtcDateTime, nullable=False),
            sa.Column("revoked_at", UtcDateTime),
            sa.Column("last_used_at", UtcDateTime),
        ),
        webhook_tokens=table(
            "webhook_tokens",
            sa.Column("tenant_id", tenant, primary_key=True),
            sa.Column("env", sa.String(16), primary_key=True),
            sa.Column("token_sha256", sa.String(64), nullable=False, unique=True),  # the token is shown once
            sa.Column("created_at", UtcDateTime, nullable=False),
        ),
        bundles=table(
            "bundles",
            sa.Column("tenant_id", tenant, primary_key=True),
            sa.Column("sha256", sa.String(64), primary_key=True),
            sa.Column("name", sa.String(63), nullable=False),
            sa.Column("version", sa.String(100), nullable=False),
            sa.Column("size", sa.Integer, nullable=False),
            sa.Column("manifest", sa.Text, nullable=False),
            sa.Column("data", sa.LargeBinary, nullable=False),
            sa.Column("uploaded_at", UtcDateTime, nullable=False),
            sa.Column("uploaded_by", sa.String(200), nullable=False),
            sa.UniqueConstraint("tenant_id", "name", "version", name=prefix + "bundles_name_version"),
        ),
        deployments=table(
            "deployments",
            sa.Column("tenant_id", tenant, primary_key=True),
            sa.Column("env", sa.String(16), primary_key=True),
            sa.Column("name", sa.String(63), primary_key=True),
            sa.Column("version", sa.String(100), nullable=False),
            sa.Column("sha256", sa.String(64), nullable=False),
            sa.Column("deployed_at", UtcDateTime, nullable=False),
            sa.Column("deployed_by", sa.String(200), nullable=False),
        ),
        generations=table(
            "generations",
            sa.Column("tenant_id", tenant, primary_key=True),
            sa.Column("env", sa.String(16), primary_key=True),
            sa.Column("generation", sa.BigInteger, nullable=False),
        ),
        audit=table(
            "audit",
            sa.Column("id", sa.BigInteger().with_variant(sa.Integer, "sqlite"), primary_key=True, autoincrement=True),
            sa.Column("tenant_id", tenant, nullable=False),
            sa.Column("at", UtcDateTime, nullable=False),
            sa.Column("actor", sa.String(200), nullable=False),
            sa.Column("action", sa.String(16), nullable=False),
            sa.Column("env", sa.String(16)),
            sa.Column("circuit", sa.String(63), nullable=False),
            sa.Column("from_version", sa.String(100)),
            sa.Column("to_version", sa.String(100)),
            sa.Column("changed_keys", sa.Text),  # JSON list of setting names, for settings changes
            sa.Index(prefix + "audit_tenant", "tenant_id", "id"),
        ),
        executions=table(
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
            sa.Column("started_at", UtcDateTime, nullable=False),
            sa.Column("debug_log", sa.Text, nullable=False),
            sa.Column("trace_id", sa.String(32)),  # the execution's OpenTelemetry trace, when it had one
            sa.Column("timeline", sa.Text),  # JSON: its host calls and triggers, timed (execution_timeline.py)
            sa.Index(prefix + "executions_tenant_time", "tenant_id", "started_at", "id"),
        ),
        webhook_ids=table(
            "webhook_ids",
            sa.Column("tenant_id", tenant, primary_key=True),
            sa.Column("source", sa.String(32), primary_key=True),
            sa.Column("webhook_id", sa.String(128), primary_key=True),
            sa.Column("expires_at", UtcDateTime, nullable=False),
            sa.Index(prefix + "webhook_ids_expiry", "tenant_id", "expires_at"),
        ),
        last_seen=table(
            "last_seen",
            sa.Column("tenant_id", tenant, primary_key=True),
            sa.Column("env", sa.String(16), primary_key=True),
            sa.Column("object", sa.String(80), primary_key=True),
            sa.Column("record_id", sa.String(100), primary_key=True),
            sa.Column("record", sa.Text, nullable=False),
            sa.Column("updated_at", UtcDateTime, nullable=False),
        ),
        gate_runs=table(
            "gate_runs",
            sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
            sa.Column("tenant_id", tenant, nullable=False),
            sa.Column("at", UtcDateTime, nullable=False),
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
    )
