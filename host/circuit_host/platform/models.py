"""The rows the platform store hands out: plain frozen dataclasses, never ORM objects."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Literal

from ..bundles.manifest import Manifest
from ..errors import CircuitError, Rejected
from .settings import TenantSettings

Environment = Literal["dev", "staging", "production"]
ENVIRONMENTS: tuple[str, ...] = ("dev", "staging", "production")
Scope = Literal["admin", "deploy", "webhook", "read"]
SCOPES: tuple[str, ...] = ("admin", "deploy", "webhook", "read")
AuditAction = Literal["upload", "deploy", "promote", "rollback", "undeploy"]


class NotFound(CircuitError):
    """The tenant, bundle, circuit or execution does not exist (for this tenant)."""

    kind = "not_found"


class Conflict(Rejected):
    """The request contradicts stored state, e.g. a different bundle under an existing name and version."""

    kind = "conflict"


@dataclass(frozen=True)
class Tenant:
    id: str
    name: str
    created_at: datetime
    settings: TenantSettings


@dataclass(frozen=True)
class ApiKey:
    """An API key without its secret. ``admin`` implies every scope."""

    id: str
    tenant_id: str
    label: str
    scopes: frozenset[str]
    created_at: datetime
    revoked_at: datetime | None = None
    last_used_at: datetime | None = None

    def allows(self, scope: str) -> bool:
        return self.revoked_at is None and ("admin" in self.scopes or scope in self.scopes)


@dataclass(frozen=True)
class BundleInfo:
    """A stored (immutable) bundle, without its bytes."""

    tenant_id: str
    sha256: str
    name: str
    version: str
    size: int
    manifest: Manifest
    uploaded_at: datetime
    uploaded_by: str


@dataclass(frozen=True)
class ActiveCircuit:
    """The version of a circuit active in a tenant environment."""

    name: str
    version: str
    sha256: str
    manifest: Manifest
    deployed_at: datetime
    deployed_by: str


@dataclass(frozen=True)
class AuditEntry:
    """Who did what, when, to which circuit in which environment, from which version to which;
    for a settings change (``circuit`` empty), which settings it changed, by name."""

    id: int
    tenant_id: str
    at: datetime
    actor: str
    action: str
    env: str | None
    circuit: str
    from_version: str | None
    to_version: str | None
    changed_keys: tuple[str, ...] = ()


@dataclass(frozen=True)
class ExecutionEntry:
    """One stored execution. ``trigger`` is ``Object.operation`` or the webhook source."""

    id: str
    tenant_id: str
    env: str
    circuit: str
    version: str
    trigger: str
    status: str
    started_at: datetime
    duration_ms: float
    error: str | None = None
    usage: dict[str, Any] = field(default_factory=dict)
    debug_log: str = ""
    trace_id: str | None = None  # 32 hex digits: the execution's trace (observability/README.md)
    timeline: list[dict[str, Any]] = field(default_factory=list)  # execution/execution_timeline.py


@dataclass(frozen=True)
class GateRun:
    """One run of the deploy gate: a bundle's tests before staging or production, and the verdict."""

    id: int
    tenant_id: str
    at: datetime
    actor: str
    env: str
    circuit: str
    version: str
    passed: bool
    coverage: float | None
    detail: str
    audit_id: int | None
