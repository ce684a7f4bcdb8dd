"""The control plane: tenants, API keys, webhook tokens, bundles, deployments, executions.

See ``README.md`` in this folder. ``Platform(url)`` is the one entry point; it returns
plain dataclasses and raises ``Rejected`` (bad input), ``Conflict`` (a ``Rejected`` that
contradicts stored state) and ``NotFound``.
"""

from .models import (
    ENVIRONMENTS,
    SCOPES,
    ActiveCircuit,
    ApiKey,
    AuditEntry,
    BundleInfo,
    Conflict,
    Environment,
    ExecutionEntry,
    GateRun,
    NotFound,
    Scope,
    Tenant,
)
from .settings import TenantSettings
from .store import KEY_PREFIX, Platform, records_tenant

__all__ = [
    "ENVIRONMENTS",
    "KEY_PREFIX",
    "SCOPES",
    "ActiveCircuit",
    "ApiKey",
    "AuditEntry",
    "BundleInfo",
    "Conflict",
    "Environment",
    "ExecutionEntry",
    "GateRun",
    "NotFound",
    "Platform",
    "Scope",
    "Tenant",
    "TenantSettings",
    "records_tenant",
]
