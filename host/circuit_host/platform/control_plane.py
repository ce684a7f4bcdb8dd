"""``Platform``: the control plane as one object, its aggregates over one shared database.

Every method of every aggregate takes the ``tenant_id`` it acts for and every query filters
on it, so no call can read or change another tenant's rows.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from pathlib import Path

from ..bundles.bundle import MAX_BUNDLE_BYTES
from .audit_log import AuditLog
from .database import PlatformDatabase, utcnow
from .deployments import Deployments
from .execution_history import ExecutionHistory
from .secret_box import SecretBox
from .stored_bundles import StoredBundles
from .tenants import Tenants
from .webhook_intake import WebhookIntake


class Platform:
    """Opens (and migrates) the control-plane database; close it, or use ``with``, when done."""

    def __init__(
        self,
        url: str | Path,
        *,
        secret_box: SecretBox,
        prefix: str = "cs_",
        busy_timeout: float = 30.0,
        max_bundle_bytes: int = MAX_BUNDLE_BYTES,
        clock: Callable[[], datetime] = utcnow,
    ) -> None:
        self.database = PlatformDatabase(url, prefix=prefix, busy_timeout=busy_timeout, clock=clock)
        self.audit = AuditLog(self.database)
        self.tenants = Tenants(self.database, self.audit, secret_box)
        self.bundles = StoredBundles(self.database, self.audit, max_bundle_bytes)
        self.deployments = Deployments(self.database, self.tenants, self.bundles, self.audit)
        self.executions = ExecutionHistory(self.database, self.tenants)
        self.webhooks = WebhookIntake(self.database)
        try:
            # Secrets at rest: a wrong master key stops here; plaintext left by older versions is
            # encrypted, and its old bytes (and plaintext webhook tokens) are scrubbed from the files.
            if self.tenants.seal_plaintext_settings() or self.database.held_plaintext:
                self.database.scrub_freed_space()
        except BaseException:
            self.database.close()
            raise

    def close(self) -> None:
        """Release the connection pool. Idempotent."""
        self.database.close()

    def __enter__(self) -> Platform:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
