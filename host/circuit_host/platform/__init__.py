"""The control plane: tenants, API keys, webhook tokens, bundles, deployments, executions.

See ``README.md`` in this folder. ``Platform(url, secret_box=...)`` is the one entry point; its aggregates
(``tenants``, ``bundles``, ``deployments``, ``audit``, ``executions``, ``webhooks``) return
plain dataclasses and raise ``Rejected`` (bad input), ``Conflict`` (a ``Rejected`` that
contradicts stored state) and ``NotFound``.
"""

from .control_plane import Platform
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
from .secret_box import MasterKey, MasterKeyError, SealedValueError, SecretBox
from .settings import TenantSettings
from .tenants import KEY_PREFIX, records_tenant

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
    "MasterKey",
    "MasterKeyError",
    "NotFound",
    "Platform",
    "Scope",
    "SealedValueError",
    "SecretBox",
    "Tenant",
    "TenantSettings",
    "records_tenant",
]
