"""What the server holds while it runs, and the one path every record change takes.

Per tenant environment the server keeps a CircuitDB store and a trigger registry built
from the environment's active circuits. The registry is rebuilt whenever the platform's
deployment generation changes, so a deploy or rollback in any process takes effect on the
next request, while executions already running finish on the version they started with.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import structlog

from ..circuitdb import CircuitDB, open_store
from ..connectors.http_client import HttpConnector
from ..connectors.records import DmlOp
from ..executions import ExecutionOptions, ExecutionRecord, Executor
from ..platform import ExecutionEntry, NotFound, Platform
from ..runtime import Runtime
from ..triggers import TriggerBinding, TriggerRegistry
from .settings import ServerSettings

log = structlog.get_logger("circuit.server")


@dataclass(frozen=True)
class Deployed:
    """An environment's circuits as of one deployment generation."""

    generation: int
    registry: TriggerRegistry
    versions: dict[str, str]  # circuit name -> version


class ServerState:
    def __init__(self, settings: ServerSettings) -> None:
        self.settings = settings
        settings.data_dir.mkdir(parents=True, exist_ok=True)
        self.runtime = Runtime(cache_dir=settings.module_cache)
        self.platform = Platform(settings.platform_url)
        self.http = HttpConnector()
        self._stores: dict[str, CircuitDB] = {}
        self._deployed: dict[str, Deployed] = {}
        self._lock = threading.Lock()
        self._stop_housekeeping = threading.Event()
        self._housekeeping: threading.Thread | None = None

    def start_housekeeping(self, interval_s: float = 3600.0) -> None:
        """Purge executions past each tenant's retention now and then every ``interval_s``."""
        if self._housekeeping is not None:
            return

        def run() -> None:
            while True:
                try:
                    purged = self.platform.purge_expired_executions()
                    log.info("executions purged", count=purged)
                except Exception:
                    log.exception("purging executions failed")
                if self._stop_housekeeping.wait(interval_s):
                    return

        self._housekeeping = threading.Thread(target=run, name="circuit-housekeeping", daemon=True)
        self._housekeeping.start()

    def close(self) -> None:
        self._stop_housekeeping.set()
        if self._housekeeping is not None:
            self._housekeeping.join(timeout=10)
        for store in self._stores.values():
            store.close()
        self.http.close()
        self.platform.close()
        self.runtime.close()

    # -- per environment -------------------------------------------------------------------

    def store(self, tenant_id: str, env: str) -> CircuitDB:
        name = self.platform.records_tenant(tenant_id, env)
        with self._lock:
            store = self._stores.get(name)
            if store is None:
                store = open_store(self.settings.records_url, tenant=name)
                self._stores[name] = store
        return store

    def deployed(self, tenant_id: str, env: str) -> Deployed:
        """The trigger registry of an environment, rebuilt when its deployment generation moves."""
        key = self.platform.records_tenant(tenant_id, env)
        generation = self.platform.generation(tenant_id, env)
        current = self._deployed.get(key)
        if current is not None and current.generation == generation:
            return current
        registry = TriggerRegistry()
        versions: dict[str, str] = {}
        for circuit in self.platform.active_circuits(tenant_id, env):
            manifest = circuit.manifest
            module = self.runtime.load(self.platform.bundle_wasm(tenant_id, circuit.sha256))
            allowed = manifest.allowed_hosts()
            versions[circuit.name] = circuit.version
            for trigger in manifest.triggers:
                for operation in trigger.operations:
                    registry.register(
                        key,
                        TriggerBinding(
                            f"{circuit.name}@{circuit.version}",
                            trigger.object,
                            operation,
                            module,
                            trigger.order,
                            allowed,
                        ),
                    )
        deployed = Deployed(generation, registry, versions)
        with self._lock:
            self._deployed[key] = deployed
        return deployed

    # -- deploys: the platform records them; the environment's schema follows the bundle ---------

    def deploy(self, tenant_id: str, env: str, name: str, version: str, actor: str) -> None:
        bundle = self.platform.get_bundle(tenant_id, name, version)
        if bundle is None:
            raise NotFound(f"no bundle {name} {version}; upload it first")
        self.store(tenant_id, env).apply_schema(bundle.manifest.schema_changes())
        self.platform.deploy(tenant_id, env, name, version, actor)

    def promote(self, tenant_id: str, from_env: str, to_env: str, actor: str, name: str | None) -> None:
        target = self.store(tenant_id, to_env)
        for circuit in self.platform.active_circuits(tenant_id, from_env):
            if name is None or circuit.name == name:
                target.apply_schema(circuit.manifest.schema_changes())
        self.platform.promote(tenant_id, from_env, to_env, actor, name=name)

    # -- the one path of a record change ---------------------------------------------------

    def apply_change(
        self,
        tenant_id: str,
        env: str,
        op: DmlOp,
        object_name: str,
        rows: list[dict[str, Any]],
        trigger: str,
        external_id: str = "Id",
    ) -> ExecutionRecord:
        """Save a change through the environment's triggers as one execution, and store the record."""
        deployed = self.deployed(tenant_id, env)
        limits = self.platform.get_settings(tenant_id).max_limits
        executor = Executor(
            self.runtime,
            self.store(tenant_id, env),
            self.http,
            triggers=deployed.registry,
            tenant=self.platform.records_tenant(tenant_id, env),
        )
        record = executor.apply_change(op, object_name, rows, ExecutionOptions(limits=limits), external_id)
        self.platform.save_execution(
            ExecutionEntry(
                id=record.id,
                tenant_id=tenant_id,
                env=env,
                circuit=",".join(sorted(deployed.versions)) or "-",
                version=",".join(f"{n}@{v}" for n, v in sorted(deployed.versions.items())) or "-",
                trigger=trigger,
                status=record.status,
                started_at=datetime.now(UTC) - timedelta(milliseconds=record.duration_ms),
                duration_ms=record.duration_ms,
                error=f"{record.error['kind']}: {record.error['message']}" if record.error else None,
                usage={name: {"used": u.used, "limit": u.limit} for name, u in record.usage.items()},
                debug_log=record.debug_log,
            )
        )
        log.info("execution", tenant=tenant_id, env=env, trigger=trigger, status=record.status, id=record.id)
        return record
