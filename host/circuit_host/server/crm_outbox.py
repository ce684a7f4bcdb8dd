"""The server's CRM writes: one outbox, a connector per execution, and the dispatcher that sends them.

When a tenant environment's ``system_of_record`` is a CRM, its executions read that CRM and
queue their DML in the outbox (in the execution's transaction, so a failed execution sends
nothing). The dispatcher thread, started with the server, sends what was committed: per outbox
tenant (``<tenant>:<env>:<crm>``) in order, retrying timeouts, 5xx and 429 (honouring
``Retry-After``) with exponential backoff, and dead-lettering an entry after the policy's last
attempt with the CRM's own message. Each pass rebuilds its senders from the tenants' current
settings, so a changed token or URL is used from the next pass; executions keep the settings
they started with.
"""

from __future__ import annotations

import threading
from typing import Any

import structlog
from pydantic import BaseModel

from ..connectors.crm import Outbox, OutboxDispatcher, OutboxEntry
from ..connectors.crm.crm_registry import CrmConnector
from ..connectors.crm.outbox import DispatchReport, Status
from ..connectors.crm.system_of_record import check_connection, crm_names, crm_of, open_connector, selected_plugin
from ..platform import Platform, records_tenant
from ..platform.models import ENVIRONMENTS
from ..platform.settings import TenantSettings
from .crm_records import CrmChange, ExecutionCrmRecords
from .settings import ServerSettings

log = structlog.get_logger("circuit.server.crm")


def outbox_tenant(tenant_id: str, env: str, crm: str) -> str:
    """The outbox's tenant for one environment's writes to one CRM: switching CRMs never sends
    the queued writes of one to the other."""
    return f"{records_tenant(tenant_id, env)}:{crm}"


def env_of(entry: OutboxEntry) -> str:
    return entry.tenant.split(":")[1]


class CrmOutbox:
    """The outbox of every tenant environment that selects a CRM, and its dispatcher thread."""

    def __init__(self, platform: Platform, settings: ServerSettings) -> None:
        self.platform = platform
        self.settings = settings
        self._outbox: Outbox | None = None
        self._dispatcher: OutboxDispatcher | None = None
        self._senders: dict[str, tuple[BaseModel, CrmConnector]] = {}
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    @property
    def outbox(self) -> Outbox:
        """Opened (and migrated) on first use: a server whose tenants never select a CRM has none."""
        with self._lock:
            if self._outbox is None:
                self._outbox = Outbox(self.settings.outbox_url)
            return self._outbox

    # --- executions --------------------------------------------------------------------

    @staticmethod
    def selection(settings: TenantSettings, env: str) -> BaseModel | None:
        """The CRM an environment's records live in, as configured; None for CircuitDB."""
        selected = settings.system_of_record.get(env)
        return selected if selected is not None and selected_plugin(selected) is not None else None

    def records_for(
        self, tenant_id: str, env: str, settings: TenantSettings, saved: CrmChange | None = None
    ) -> ExecutionCrmRecords | None:
        """A records connector for one execution, built from the settings it started with (None:
        the environment uses CircuitDB). The caller closes it after the execution."""
        selected = self.selection(settings, env)
        if selected is None:
            return None
        connector = open_connector(selected, self.outbox, outbox_tenant(tenant_id, env, crm_of(selected)))
        return None if connector is None else ExecutionCrmRecords(connector, saved if saved and saved.saved else None)

    def link(self, records: ExecutionCrmRecords, execution_id: str) -> None:
        self.outbox.link_execution(records.entry_ids(), execution_id)

    def check_changes(self, before: TenantSettings, after: TenantSettings) -> None:
        """Before a settings change is saved: one test request to every newly selected or changed CRM."""
        for env, selected in after.system_of_record.items():
            if before.system_of_record.get(env) != selected:
                check_connection(env, selected, self.outbox)

    # --- operators -----------------------------------------------------------------------

    def entries(
        self, tenant_id: str, status: Status | None = None, limit: int = 100, before_id: int | None = None
    ) -> list[OutboxEntry]:
        tenants = [outbox_tenant(tenant_id, env, crm) for env in ENVIRONMENTS for crm in crm_names()]
        return self.outbox.listed(tenants, status, limit, before_id)

    def entry(self, tenant_id: str, entry_id: int) -> OutboxEntry | None:
        found = self.outbox.entry(entry_id)
        return found if found is not None and found.tenant.startswith(f"{tenant_id}:") else None

    def of_execution(self, execution_id: str) -> list[OutboxEntry]:
        return self.outbox.of_execution(execution_id)

    # --- the dispatcher ----------------------------------------------------------------

    def start(self) -> None:
        if self._thread is not None:
            return
        self._stop.clear()
        self._thread = threading.Thread(target=self._run, name="crm-outbox-dispatcher", daemon=True)
        self._thread.start()

    def dispatch_once(self) -> DispatchReport:
        """One pass over every tenant environment that selects a CRM (the thread's loop, and tests)."""
        senders = self._current_senders()
        if not senders:
            return DispatchReport()
        if self._dispatcher is None:
            self._dispatcher = OutboxDispatcher(
                self.outbox, {}, self.settings.outbox_retry, poll_interval_s=self.settings.outbox_poll_s
            )
        self._dispatcher.senders = dict(senders)
        return self._dispatcher.dispatch_once()

    def _run(self) -> None:
        while not self._stop.is_set():
            try:
                report = self.dispatch_once()
            except Exception:  # a database or settings hiccup must not end the loop
                log.exception("outbox dispatch pass failed")
                report = DispatchReport()
            if not report.sent:
                self._stop.wait(self.settings.outbox_poll_s)

    def _current_senders(self) -> dict[str, Any]:
        """A connector per environment that selects a CRM, rebuilt when its settings change."""
        wanted: dict[str, BaseModel] = {}
        for tenant in self.platform.tenants.list_tenants():
            for env, selected in tenant.settings.system_of_record.items():
                if selected_plugin(selected) is not None:
                    wanted[outbox_tenant(tenant.id, env, crm_of(selected))] = selected
        for key in [k for k, (sel, _) in self._senders.items() if wanted.get(k) != sel]:
            self._senders.pop(key)[1].close()
        for key, selected in wanted.items():
            if key not in self._senders:
                connector = open_connector(selected, self.outbox, key)
                if connector is not None:
                    self._senders[key] = (selected, connector)
        return {key: connector for key, (_, connector) in self._senders.items()}

    def close(self) -> None:
        """Stop after the entry being sent, if any; idempotent."""
        self._stop.set()
        if self._dispatcher is not None:
            self._dispatcher.stop()
        if self._thread is not None:
            self._thread.join(timeout=30)
            self._thread = None
        for _, connector in self._senders.values():
            connector.close()
        self._senders.clear()
        if self._outbox is not None:
            self._outbox.close()
