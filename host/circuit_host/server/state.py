"""What the server holds while it runs, and the one path every record change takes.

Per tenant environment the server keeps a CircuitDB store and a trigger registry built
from the environment's active circuits. The registry is rebuilt whenever the platform's
deployment generation changes, so a deploy or rollback in any process takes effect on the
next request, while executions already running finish on the version they started with.
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import structlog

from ..bundles import Manifest, read_bundle
from ..circuitdb import CircuitDB, SchemaLimits
from ..circuitdb.store import SchemaChanges
from ..connectors.http_client import HttpConnector
from ..connectors.records import DmlOp
from ..errors import Rejected
from ..execution.callout_policy import NamedCredential
from ..execution.execution_timeline import ExecutionTimeline
from ..execution.executions import ExecutionOptions, ExecutionRecord, Executor
from ..execution.limits import RESOURCES, LimitsProfile
from ..jobs import RetryPolicy
from ..migrations import control_plane
from ..observability import Telemetry
from ..platform import ENVIRONMENTS, BundleInfo, Conflict, ExecutionEntry, NotFound, TenantSettings, records_tenant
from ..sandbox.runtime import Runtime
from ..testing import TestReport, outside_sdk, run_test_module
from ..testing.runner import TestBudget
from ..triggers import TriggerBinding, TriggerRegistry
from ..webhooks import Change
from .admission import ExecutionAdmission
from .async_circuits import AsyncCircuits
from .batch_circuits import BatchCircuits
from .changes import as_dml
from .credential_cache import CredentialCache
from .crm_outbox import CrmOutbox
from .crm_records import CrmChange, crm_change
from .deploy_gate_jobs import DeployGateJobs
from .master_key import open_platform
from .records_files import open_records, split_shared_records
from .server_jobs import ServerJobs
from .settings import ServerSettings
from .webhook_inbox import ReceiptedRecords, WebhookInbox

log = structlog.get_logger("circuit.server")
GATED_ENVIRONMENTS = frozenset({"staging", "production"})
# The gate runs in a job (deploy_gate_jobs.py): bounded in tests and time, and what it keeps of a refusal.
GATE_BUDGET = TestBudget(max_tests=200, max_seconds=120.0)
MAX_GATE_LINES = 20  # failed tests named in a refusal
MAX_GATE_LINE = 300  # characters of each


@dataclass(frozen=True)
class GateVerdict:
    tests: int
    coverage: float | None


@dataclass(frozen=True)
class Deployed:
    """An environment's circuits as of one deployment generation."""

    generation: int
    registry: TriggerRegistry
    versions: dict[str, str]  # circuit name -> version
    limits: LimitsProfile  # the execution budget: what the deployed circuits ask for, within the ceiling
    configured: tuple[LimitsProfile, Mapping[str, NamedCredential]]  # the tenant settings it was built from


class ServerState:
    def __init__(self, settings: ServerSettings) -> None:
        self.settings = settings
        self._closed = False
        self.admission = ExecutionAdmission(
            settings.max_concurrent_executions,
            settings.max_concurrent_executions_per_tenant,
            settings.admission_wait_ms / 1000,
        )
        self.platform = open_platform(settings)  # makes the data directory (0700) and checks the master key
        self.runtime = Runtime(cache_dir=settings.module_cache)
        self.http = HttpConnector()
        self.telemetry = Telemetry(settings.observability)  # metrics, traces, probes (observability/)
        self.telemetry.watch_database(self.platform.database.engine, control_plane(self.platform.database.prefix))
        self.crm_outbox = CrmOutbox(self.platform, settings)  # CRM writes; its dispatcher starts with the app
        split_shared_records(settings, [t.id for t in self.platform.tenants.list_tenants()])  # an old data dir
        self.credentials = CredentialCache(self.platform.tenants)  # the request path's keys and settings
        self._stores: dict[str, CircuitDB] = {}
        self._pooled: OrderedDict[str, CircuitDB] = OrderedDict()  # SQLite stores that may hold connections
        self._deployed: dict[str, Deployed] = {}
        self._lock = threading.Lock()
        self.jobs = ServerJobs(self.platform, settings.platform_url, settings.job_workers, settings.job_lease_s)
        self.telemetry.count_jobs(self.jobs.job_counts)
        self.telemetry.add_readiness_check("workers", self.jobs.workers_problem)
        self.inbox = WebhookInbox(  # webhooks are stored, then applied by jobs (server/webhook_inbox.py)
            self.platform,
            self.jobs,
            self.apply_webhook_changes,
            lambda tenant_id, env, keys: self.store(tenant_id, env).receipts(keys),
            RetryPolicy(settings.inbox_max_attempts, settings.inbox_backoff_s),
        )
        self.deploy_gate = DeployGateJobs(self.platform, self.jobs, self.deploy, self.promote)  # gated: jobs
        self.async_circuits = AsyncCircuits(self)  # queueable and scheduled circuits (server/async_circuits.py)
        self.batches = BatchCircuits(self, self.async_circuits)  # batch circuits (server/batch_circuits.py)

    def apply_webhook_changes(
        self, tenant_id: str, env: str, source: str, changes: list[Change], receipts: Sequence[str] = ()
    ) -> list[ExecutionRecord]:
        """Apply webhook changes through the triggers, one execution each. ``receipts``: the inbox
        rows they carry, recorded in the records transaction (not when a CRM holds the records)."""
        records: list[ExecutionRecord] = []
        crm = self.crm_outbox.selection(self.platform.tenants.get_settings(tenant_id), env)
        for change in changes:
            trigger = f"{source}:{change.object}.{change.action}"
            if crm is not None:  # the records live in a CRM (server/crm_records.py)
                on = crm_change(crm, change)
                if on.rows:
                    records.append(self.apply_change(tenant_id, env, on.op, on.object_name, on.rows, trigger, saved=on))
                continue
            op, rows, external_id = as_dml(self.store(tenant_id, env), change)
            if rows:
                records.append(
                    self.apply_change(tenant_id, env, op, change.object, rows, trigger, external_id, receipts=receipts)
                )
        return records

    def close(self) -> None:
        """Idempotent: ``circuit serve --workers`` closes the parent's state before its processes start."""
        if self._closed:
            return
        self._closed = True
        self.crm_outbox.close()
        self.jobs.close()
        for store in self._stores.values():
            store.close()
        self.http.close()
        self.platform.close()
        self.runtime.close()

    # -- per environment -------------------------------------------------------------------

    def store(self, tenant_id: str, env: str) -> CircuitDB:
        """The environment's records store, opened once. Opening waits for the environment's own
        locks (its file's, on SQLite), so it happens outside the server's lock: never another tenant's wait."""
        name = records_tenant(tenant_id, env)
        with self._lock:
            store = self._stores.get(name)
        if store is None:
            opened = open_records(self.settings, tenant_id, env, self.schema_limits(tenant_id))
            with self._lock:
                store = self._stores.setdefault(name, opened)
            if store is not opened:
                opened.close()  # another thread opened it first
        if store.dialect == "sqlite":
            self._keep_pools_bounded(name, store)
        return store

    def _keep_pools_bounded(self, name: str, store: CircuitDB) -> None:
        """A SQLite file is a pool of connections of its own (a file descriptor each, with its -wal):
        beyond ``max_open_record_files`` the least recently used files' pools are emptied. Their stores
        stay usable (a later transaction connects again), and a connection in use is closed only
        when it is given back. On PostgreSQL the stores share one pool (``acquire_engine``)."""
        with self._lock:
            self._pooled[name] = store
            self._pooled.move_to_end(name)
            idle = []
            while len(self._pooled) > self.settings.max_open_record_files:
                idle.append(self._pooled.popitem(last=False)[1])
        for each in idle:
            each.engine.dispose()

    def schema_limits(self, tenant_id: str) -> SchemaLimits:
        """How far the tenant's settings let each environment's schema grow (deploys read it each time)."""
        settings = self.platform.tenants.get_settings(tenant_id)
        return SchemaLimits(settings.max_custom_objects, settings.max_custom_fields_per_object)

    def deployed(self, tenant_id: str, env: str, settings: TenantSettings | None = None) -> Deployed:
        """The trigger registry of an environment, rebuilt when its deployment generation moves or the
        tenant's limit ceiling or named credentials change (``settings``: as the caller read them)."""
        key = records_tenant(tenant_id, env)
        generation = self.platform.deployments.generation(tenant_id, env)
        settings = settings or self.platform.tenants.get_settings(tenant_id)
        configured = (settings.max_limits, settings.named_credentials)
        current = self._deployed.get(key)
        if current is not None and current.generation == generation and current.configured == configured:
            return current
        registry = TriggerRegistry()
        versions: dict[str, str] = {}
        ceiling = settings.max_limits
        budgets: list[LimitsProfile] = []
        for circuit in self.platform.deployments.active_circuits(tenant_id, env):
            manifest = circuit.manifest
            budgets.append(manifest.limits_profile(ceiling))
            module = self.runtime.load(self.platform.bundles.bundle_wasm(tenant_id, circuit.sha256))
            allowed = manifest.allowed_hosts()
            credentials = {
                n: settings.named_credentials[n] for n in manifest.credentials.names if n in settings.named_credentials
            }
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
                            credentials,
                        ),
                    )
        deployed = Deployed(generation, registry, versions, execution_limits(budgets, ceiling), configured)
        with self._lock:
            self._deployed[key] = deployed
        return deployed

    # -- deploys: the platform records them; the environment's schema follows the bundle ---------

    def deploy(self, tenant_id: str, env: str, name: str, version: str, actor: str) -> None:
        bundle = self.platform.bundles.get_bundle(tenant_id, name, version)
        if bundle is None:
            raise NotFound(f"no bundle {name} {version}; upload it first")
        self._check_credentials(tenant_id, bundle.manifest)
        verdict = self.gate(tenant_id, env, bundle.sha256, actor) if env in GATED_ENVIRONMENTS else None
        self.store(tenant_id, env).apply_schema(bundle.manifest.schema_changes(), self.schema_limits(tenant_id))
        entry = self.platform.deployments.deploy(tenant_id, env, name, version, actor)
        self.telemetry.count_deploy("deploy", tenant_id, env)
        log.info("deployed", tenant=tenant_id, environment=env, circuit=name, version=version, actor=actor)
        if verdict is not None:
            self._record_gate(tenant_id, env, name, version, actor, verdict, entry.id if entry else None)

    def promote(
        self,
        tenant_id: str,
        from_env: str,
        to_env: str,
        actor: str,
        name: str | None,
        bundles: Sequence[BundleInfo] | None = None,
    ) -> None:
        """Promote under the deploy path's rules (credentials, the gate in a gated target, the schema).
        ``bundles``: the versions read when the promotion was asked for (``promotion_sources``); a gated
        promotion runs in a job (deploy_gate_jobs.py) and promotes exactly what it gated."""
        if bundles is None:
            bundles = self.platform.deployments.promotion_sources(tenant_id, from_env, to_env, name)
        target = self.store(tenant_id, to_env)
        verdicts: dict[str, tuple[str, GateVerdict]] = {}
        for bundle in bundles:
            self._check_credentials(tenant_id, bundle.manifest)
            if to_env in GATED_ENVIRONMENTS:
                verdicts[bundle.name] = (bundle.version, self.gate(tenant_id, to_env, bundle.sha256, actor))
            target.apply_schema(bundle.manifest.schema_changes(), self.schema_limits(tenant_id))
        entries = self.platform.deployments.promote(tenant_id, from_env, to_env, actor, name=name, bundles=bundles)
        self.telemetry.count_deploy("promotion", tenant_id, to_env)
        log.info("promoted", tenant=tenant_id, environment=to_env, from_env=from_env, circuit=name, actor=actor)
        audit_ids = {e.circuit: e.id for e in entries}
        for circuit_name, (version, verdict) in verdicts.items():
            self._record_gate(tenant_id, to_env, circuit_name, version, actor, verdict, audit_ids.get(circuit_name))

    def rollback(self, tenant_id: str, env: str, name: str, actor: str, to_version: str | None) -> None:
        """Roll back under the deploy path's rules: in a gated environment only to a version that
        passed the gate there; every named credential configured; the version's schema applied."""

        def admit(bundle: BundleInfo) -> None:
            if env in GATED_ENVIRONMENTS and not self.platform.deployments.passed_gate(
                tenant_id, env, bundle.name, bundle.version
            ):
                raise Conflict(
                    f"{bundle.name} {bundle.version} never passed the deploy gate in {env}; "
                    "deploy it instead, which runs the gate"
                )
            self._check_credentials(tenant_id, bundle.manifest)
            self.store(tenant_id, env).apply_schema(bundle.manifest.schema_changes(), self.schema_limits(tenant_id))

        self.platform.deployments.rollback(tenant_id, env, name, actor, to_version=to_version, admit=admit)
        self.telemetry.count_deploy("rollback", tenant_id, env)
        log.info("rolled back", tenant=tenant_id, environment=env, circuit=name, to_version=to_version, actor=actor)

    def gate(self, tenant_id: str, env: str, sha256: str, actor: str) -> GateVerdict:
        """Run the deploy gate; a refusal is recorded before it is raised, a pass once the deploy is."""
        try:
            report = self.check_tests(tenant_id, env, sha256)
        except Rejected as exc:
            info = self.platform.bundles.get_bundle_by_sha(tenant_id, sha256)
            name, version = (info.name, info.version) if info is not None else ("?", "?")
            self.platform.deployments.record_gate_run(tenant_id, env, name, version, actor, False, None, str(exc))
            self.telemetry.count_gate_verdict(tenant_id, env, passed=False)
            log.warning("deploy gate refused", tenant=tenant_id, environment=env, circuit=name, version=version)
            raise
        self.telemetry.count_gate_verdict(tenant_id, env, passed=True)
        coverage = report.coverage.percent if report.coverage is not None else None
        return GateVerdict(len(report.results), coverage)

    def _record_gate(
        self, tenant_id: str, env: str, name: str, version: str, actor: str, verdict: GateVerdict, audit_id: int | None
    ) -> None:
        detail = f"{verdict.tests} tests passed, coverage {verdict.coverage or 0.0:.1f}%"
        self.platform.deployments.record_gate_run(
            tenant_id, env, name, version, actor, True, verdict.coverage, detail, audit_id
        )

    def check_tests(self, tenant_id: str, env: str, sha256: str) -> TestReport:
        """The deploy gate: the bundle's tests must pass in the sandbox and cover enough of its code.

        As Apex does for production, staging and production refuse untested code; the threshold is
        the tenant's ``coverage_threshold`` (75% by default).
        """
        data = self.platform.bundles.bundle_bytes(tenant_id, sha256)
        if data is None:
            raise NotFound(f"no bundle {sha256}")
        bundle = read_bundle(data, self.runtime)
        threshold = self.platform.tenants.get_settings(tenant_id).coverage_threshold
        if bundle.tests_wasm is None:
            raise Rejected(
                f"{bundle.name} {bundle.version} has no tests (tests.wasm): staging and production need passing "
                f"tests covering at least {threshold}% of its code; build it from a directory with tests.zig"
            )
        report = run_test_module(
            bundle.tests_wasm,
            bundle.manifest,
            self.settings.module_cache,
            limits=bundle.manifest.limits_profile(self.platform.tenants.get_settings(tenant_id).max_limits),
            coverage_of=outside_sdk,
            schema=custom_schema(self.store(tenant_id, env)),  # the schema the circuit will meet there
            budget=GATE_BUDGET,
            schema_limits=self.schema_limits(tenant_id),
        )
        what = f"{bundle.name} {bundle.version}"
        percent = report.coverage.percent if report.coverage is not None else 0.0
        failed = [f"{r.name}: {r.status}: {r.message}" for r in report.results if r.status != "pass"]
        if failed:
            raise Rejected(gate_refusal(what, failed, len(report.results), percent))
        if percent < threshold:
            raise Rejected(f"{what}: tests cover {percent:.1f}% of its code, under the required {threshold}%")
        log.info("deploy gate passed", circuit=bundle.name, version=bundle.version, coverage=round(percent, 1))
        return report

    def _check_credentials(self, tenant_id: str, manifest: Manifest) -> None:
        """A circuit may only go live where every named credential it uses is configured."""
        configured = self.platform.tenants.get_settings(tenant_id).named_credentials
        missing = [name for name in manifest.credentials.names if name not in configured]
        if missing:
            raise Rejected(
                f"{manifest.name} {manifest.version} uses named credential(s) {', '.join(missing)} "
                "that this tenant has not configured"
            )

    # -- tenant settings: the one path of an operator's change ------------------------------

    def update_settings(
        self,
        tenant_id: str,
        changes: Mapping[str, Any] | Callable[[TenantSettings], Mapping[str, Any]],
        actor: str,
    ) -> TenantSettings:
        """Validate and store a partial settings change (a merge patch, or a function of the current
        settings returning one), audited under ``actor``.

        Every change from the API comes through here (named credentials too), so a check of the new
        settings against the outside world (a test call to a CRM) belongs here, before the write.
        """
        if isinstance(changes, Mapping) and changes.get("system_of_record") is not None:
            selected = TenantSettings.validated({"system_of_record": changes["system_of_record"]})
            self.crm_outbox.check_changes(self.platform.tenants.get_settings(tenant_id), selected)
        return self.platform.tenants.update_settings(tenant_id, changes, actor)

    def put_credential(
        self, tenant_id: str, name: str, url: str, headers: Mapping[str, str], actor: str
    ) -> TenantSettings:
        """Create or replace a named credential; executions already running keep the one they started with."""

        def patch(current: TenantSettings) -> dict[str, Any]:
            credential = {"url": url, "headers": dict(headers)}
            return {"named_credentials": {**current.named_credentials, name: credential}}

        return self.update_settings(tenant_id, patch, actor)

    def delete_credential(self, tenant_id: str, name: str, actor: str) -> None:
        """Remove a named credential, refused while an active circuit in any environment declares it:
        deleting it would make that circuit's callouts fail in production."""
        users = self.credential_users(tenant_id, name)
        if users:
            raise Conflict(
                f"named credential {name!r} is used by {', '.join(users)}; deploy versions that do not declare "
                "it (or roll back) first"
            )

        def patch(current: TenantSettings) -> dict[str, Any]:
            if name not in current.named_credentials:
                raise NotFound(f"no named credential {name!r}")
            return {"named_credentials": {n: c for n, c in current.named_credentials.items() if n != name}}

        self.update_settings(tenant_id, patch, actor)

    def credential_users(self, tenant_id: str, name: str) -> list[str]:
        """The active circuits declaring a named credential, as ``env: circuit version``."""
        return [
            f"{env}: {circuit.name} {circuit.version}"
            for env in ENVIRONMENTS
            for circuit in self.platform.deployments.active_circuits(tenant_id, env)
            if name in circuit.manifest.credentials.names
        ]

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
        saved: CrmChange | None = None,
        receipts: Sequence[str] = (),
    ) -> ExecutionRecord:
        """Save a change through the environment's triggers as one execution, and store the record.

        The tenant's settings are read once, here: the execution runs on them to its end (credentials,
        networks, limits, the CRM holding its records), whatever an operator changes meanwhile; the
        next execution sees the change. ``saved``: a CRM change the CRM already holds. ``receipts``:
        keys the records transaction records (``CircuitDB.begin``), for work applied once.
        """
        settings = self.platform.tenants.get_settings(tenant_id)
        deployed = self.deployed(tenant_id, env, settings)
        limits = deployed.limits
        circuit = ",".join(sorted(deployed.versions)) or "-"
        crm_records = self.crm_outbox.records_for(tenant_id, env, settings, saved)
        timeline = ExecutionTimeline(self.telemetry.execution_observer(tenant_id, env, circuit, trigger))
        store = crm_records or self.store(tenant_id, env)
        executor = Executor(
            self.runtime,
            ReceiptedRecords(store, receipts) if receipts and isinstance(store, CircuitDB) else store,
            self.http,
            triggers=deployed.registry,
            tenant=records_tenant(tenant_id, env),
            observer=timeline,  # metrics and traces, and the timeline stored below
        )
        options = ExecutionOptions(
            limits=limits,
            allowed_networks=settings.callout_allowed_networks,
            jobs=self.async_circuits.sink(tenant_id, env, deployed.versions),  # jobs.enqueue, after commit
        )
        with structlog.contextvars.bound_contextvars(tenant=tenant_id, environment=env):  # on every log line
            try:
                record = executor.apply_change(op, object_name, rows, options, external_id)
            finally:
                if crm_records is not None:
                    crm_records.close()
            if crm_records is not None and record.committed:
                self.crm_outbox.link(crm_records, record.id)
            self.platform.executions.save_execution(
                ExecutionEntry(
                    id=record.id,
                    tenant_id=tenant_id,
                    env=env,
                    circuit=circuit,
                    version=",".join(f"{n}@{v}" for n, v in sorted(deployed.versions.items())) or "-",
                    trigger=trigger,
                    status=record.status,
                    started_at=datetime.now(UTC) - timedelta(milliseconds=record.duration_ms),
                    duration_ms=record.duration_ms,
                    error=f"{record.error['kind']}: {record.error['message']}" if record.error else None,
                    usage={name: {"used": u.used, "limit": u.limit} for name, u in record.usage.items()},
                    debug_log=record.debug_log,
                    trace_id=record.trace_id,
                    timeline=timeline.as_list(),
                )
            )
            log.info(
                "execution",
                trigger=trigger,
                status=record.status,
                execution_id=record.id,
                duration_ms=record.duration_ms,
                trace_id=record.trace_id,
            )
        return record


def execution_limits(budgets: list[LimitsProfile], ceiling: LimitsProfile) -> LimitsProfile:
    """One transaction runs every triggered circuit, so it gets, per resource, the most any of them
    declared (each already within the tenant's ceiling); with nothing deployed, the defaults capped."""
    if not budgets:
        return LimitsProfile().capped_by(ceiling)
    return LimitsProfile().with_overrides({name: max(getattr(b, name) for b in budgets) for name in RESOURCES})


def gate_refusal(what: str, failed: list[str], total: int, percent: float) -> str:
    """The deploy gate's refusal, bounded: it is answered, stored and shown, whatever the tests print."""
    summary = f"{len(failed)} of {total} tests failed (coverage {percent:.1f}%)"
    shown = "; ".join(line[:MAX_GATE_LINE] for line in failed[:MAX_GATE_LINES])
    more = f"; and {len(failed) - MAX_GATE_LINES} more" if len(failed) > MAX_GATE_LINES else ""
    return f"{what}: {summary}: {shown}{more}"


def custom_schema(store: CircuitDB) -> SchemaChanges:
    """An environment's custom objects and its custom fields on standard objects, to recreate elsewhere."""
    objects = tuple(o for o in store.schema.objects if o.name.endswith("__c"))
    fields = tuple(
        (o.name, f)
        for o in store.schema.objects
        if not o.name.endswith("__c")
        for f in o.fields
        if f.name.endswith("__c")
    )
    return SchemaChanges(objects, fields)
