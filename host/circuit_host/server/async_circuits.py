"""Asynchronous circuits: queueable jobs (``jobs.enqueue``) and scheduled circuits (``[[schedules]]``).

Both are job kinds on the server's queue (``server_jobs.py``), run by whichever worker claims them,
each as one execution under the asynchronous limits (``execution.limits.ASYNCHRONOUS``), stored
like any other and linked to its job (``JobRun.link_execution``):

- ``circuit.job``: enqueued after an execution that called ``jobs.enqueue`` committed, keyed by
  ``exec:<execution id>:<n>``; runs the named circuit at the version active when it was enqueued,
  with the event ``{"kind": "job", "payload": ..., "depth": n}``.
- ``circuit.schedule``: one job per cron tick across the fleet (``jobs/periodic_ticker.py``);
  runs the circuit's active version with ``{"kind": "schedule", "schedule", "tick", "payload"}``.

A job's execution commits at most once: its records transaction records the receipt ``job:<id>``
(``CircuitDB.begin(receipts=...)``), so an attempt re-run after a worker died between the commit
and the job's completion finds the receipt, commits nothing and ends the job.
"""

from __future__ import annotations

import threading
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any, Protocol

import structlog

from ..circuitdb import CircuitDB, CircuitTransaction, OutboxJob
from ..connectors.http_client import HttpConnector
from ..connectors.records import RecordsTransaction
from ..errors import CircuitError
from ..execution.execution_timeline import ExecutionTimeline
from ..execution.executions import ExecutionOptions, ExecutionRecord, Executor
from ..execution.job_intents import JobIntent
from ..execution.limits import ASYNCHRONOUS
from ..jobs import JobQueue, JobRequest, JobRun, PeriodicSchedule, RetryPolicy
from ..observability import Telemetry
from ..platform import ENVIRONMENTS, ExecutionEntry, Platform, TenantSettings, records_tenant
from ..sandbox.runtime import Runtime
from ..triggers import TriggerRegistry
from .crm_outbox import CrmOutbox
from .server_jobs import ServerJobs
from .webhook_inbox import ReceiptedRecords

log = structlog.get_logger("circuit.server.jobs")

QUEUEABLE_KIND = "circuit.job"
SCHEDULE_KIND = "circuit.schedule"
RELAY_KIND = "circuit.job-relay"
RELAY = PeriodicSchedule(RELAY_KIND, "* * * * *", RELAY_KIND)
"""Every minute, and once at each worker's start: jobs left in the job outbox are enqueued."""
CIRCUIT_JOB_RETRY = RetryPolicy(max_attempts=3, backoff_s=5.0)
"""A job whose execution fails (error, limit, trap, timeout) or cannot start is tried three times in
all, then dead; a worker that died mid-job counts as a failed attempt."""


class JobFailed(CircuitError):
    """A job's execution did not end ``ok``: the attempt fails and the queue retries it."""

    kind = "job_failed"


class DeployedCircuits(Protocol):
    """What the server's deployment cache says about an environment (``state.Deployed``)."""

    @property
    def registry(self) -> TriggerRegistry: ...

    @property
    def versions(self) -> dict[str, str]: ...


class CircuitHost(Protocol):
    """The parts of the server state a job runs on (``ServerState`` is one)."""

    platform: Platform
    runtime: Runtime
    http: HttpConnector
    telemetry: Telemetry
    crm_outbox: CrmOutbox
    jobs: ServerJobs

    def store(self, tenant_id: str, env: str) -> CircuitDB: ...

    def deployed(self, tenant_id: str, env: str, settings: TenantSettings | None = None) -> DeployedCircuits: ...


def circuit_job(tenant_id: str, env: str, job: OutboxJob) -> JobRequest:
    """The ``circuit.job`` of one outbox job (handed over after commit, or relayed after a crash)."""
    return JobRequest(
        QUEUEABLE_KIND,
        job.payload,
        tenant_id=tenant_id,
        circuit=job.circuit,
        env=env,
        retry=CIRCUIT_JOB_RETRY,
        key=job.key,
    )


@dataclass
class QueueSink:
    """An execution's ``JobSink``: its committed intents become ``circuit.job`` jobs of its tenant
    environment, through the job outbox of its records transaction when that is CircuitDB's."""

    queue: JobQueue
    tenant_id: str
    env: str
    versions: Mapping[str, str]  # circuit -> the version active for the enqueuing execution
    chain_depth: int
    max_chain_depth: int
    staged_in: CircuitDB | None = field(default=None, init=False)  # the store whose outbox holds them

    def known_circuit(self, name: str) -> bool:
        return name in self.versions

    def outbox_jobs(self, intents: Sequence[JobIntent]) -> list[OutboxJob]:
        return [
            OutboxJob(
                intent.key,
                intent.circuit,
                {"version": self.versions[intent.circuit], "payload": intent.payload, "depth": self.chain_depth + 1},
            )
            for intent in intents
        ]

    def stage(self, transaction: RecordsTransaction, intents: Sequence[JobIntent]) -> None:
        if isinstance(transaction, CircuitTransaction):  # a CRM's records hold no outbox: after-commit only
            transaction.add_outbox_jobs(self.outbox_jobs(intents))
            self.staged_in = transaction.store

    def enqueue_committed(self, intents: Sequence[JobIntent]) -> None:
        jobs = self.outbox_jobs(intents)
        for job in jobs:
            self.queue.enqueue(circuit_job(self.tenant_id, self.env, job))
        if self.staged_in is not None:  # a failure before this leaves them to the relay
            self.staged_in.forget_outbox_jobs([job.key for job in jobs])


class AsyncCircuits:
    """Registers the job kinds and the deployed schedules on the server's jobs; runs their executions."""

    def __init__(self, host: CircuitHost) -> None:
        self.host = host
        self._schedules: dict[str, tuple[int, tuple[PeriodicSchedule, ...]]] = {}  # tenant env -> (generation, ...)
        self._lock = threading.Lock()
        host.jobs.register(QUEUEABLE_KIND, self.run_queueable)
        host.jobs.register(SCHEDULE_KIND, self.run_scheduled)
        host.jobs.register(RELAY_KIND, self.run_relay, RELAY, at_start=True)
        host.jobs.add_schedule_source(self.deployed_schedules)

    def sink(self, tenant_id: str, env: str, versions: Mapping[str, str], depth: int = 0) -> QueueSink:
        """Where the jobs of an execution in ``env`` go; ``depth``: that execution's own place in a chain."""
        max_depth = self.host.platform.tenants.get_settings(tenant_id).max_job_chain_depth
        return QueueSink(self.host.jobs.queue, tenant_id, env, dict(versions), depth, max_depth)

    # -- queueable ---------------------------------------------------------------------------

    def run_queueable(self, run: JobRun) -> None:
        job = run.job
        assert job.circuit is not None and job.env is not None
        data = job.payload
        event = {"kind": "job", "payload": data["payload"], "depth": data["depth"]}
        self.run_job_execution(run, job.circuit, str(data["version"]), event, f"job:{job.id}", int(data["depth"]))

    def run_relay(self, run: JobRun) -> None:
        self.relay_job_outbox()

    def relay_job_outbox(self) -> int:
        """Enqueue the jobs that executions committed into their job outbox but never handed over
        (the process died in between, or the queue refused): the jobs' keys make a job that was
        enqueued after all come out once. How many were relayed."""
        platform = self.host.platform
        relayed = 0
        for tenant in platform.tenants.list_tenants():
            for env in ENVIRONMENTS:
                if not platform.deployments.generation(tenant.id, env):
                    continue  # nothing was ever deployed here: no execution enqueued anything
                store = self.host.store(tenant.id, env)
                while jobs := store.outbox_jobs():
                    for job in jobs:
                        self.host.jobs.queue.enqueue(circuit_job(tenant.id, env, job))
                    store.forget_outbox_jobs([job.key for job in jobs])
                    relayed += len(jobs)
                    log.warning("relayed jobs from the job outbox", tenant=tenant.id, env=env, count=len(jobs))
        return relayed

    # -- scheduled ---------------------------------------------------------------------------

    def deployed_schedules(self) -> list[PeriodicSchedule]:
        """Every active circuit's ``[[schedules]]``, in every tenant environment: asked by each
        worker's ticker every second, so each environment's are cached by its deployment generation."""
        platform = self.host.platform
        found: list[PeriodicSchedule] = []
        for tenant in platform.tenants.list_tenants():
            for env in ENVIRONMENTS:
                key = records_tenant(tenant.id, env)
                generation = platform.deployments.generation(tenant.id, env)
                with self._lock:
                    cached = self._schedules.get(key)
                if cached is None or cached[0] != generation:
                    cached = (generation, tuple(self._schedules_of(tenant.id, env)))
                    with self._lock:
                        self._schedules[key] = cached
                found.extend(cached[1])
        return found

    def _schedules_of(self, tenant_id: str, env: str) -> list[PeriodicSchedule]:
        schedules = []
        for circuit in self.host.platform.deployments.active_circuits(tenant_id, env):
            for index, spec in enumerate(circuit.manifest.schedules):
                name = spec.name or str(index)
                target = spec.circuit or circuit.name
                schedules.append(
                    PeriodicSchedule(
                        id=f"circuit:{tenant_id}:{env}:{circuit.name}:{name}",
                        cron=spec.cron,
                        kind=SCHEDULE_KIND,
                        timezone=spec.timezone,
                        payload={"schedule": name, "owner": circuit.name, "payload": spec.payload},
                        tenant_id=tenant_id,
                        circuit=target,
                        env=env,
                        missed=spec.missed,
                        retry=CIRCUIT_JOB_RETRY,
                    )
                )
        return schedules

    def run_scheduled(self, run: JobRun) -> None:
        job = run.job
        assert job.circuit is not None and job.env is not None
        inner = job.payload["payload"]
        version = self.host.deployed(job.tenant_id, job.env).versions.get(job.circuit)
        if version is None:
            log.info("scheduled circuit is no longer active", job_id=job.id, circuit=job.circuit, env=job.env)
            return
        event = {
            "kind": "schedule",
            "schedule": inner["schedule"],
            "tick": job.payload["tick"],
            "payload": inner["payload"],
        }
        self.run_job_execution(run, job.circuit, version, event, f"schedule:{inner['owner']}:{inner['schedule']}", 0)

    # -- one execution of one job ------------------------------------------------------------

    def run_job_execution(
        self, run: JobRun, circuit: str, version: str, event: dict[str, Any], trigger: str, depth: int
    ) -> ExecutionRecord | None:
        """Run ``circuit@version`` with ``event`` as the job's execution; ``None`` when an earlier
        attempt committed it already. Raises ``JobFailed`` when the execution did not end ``ok``."""
        job = run.job
        assert job.env is not None
        receipt = f"job:{job.id}"
        record = self.run_circuit(
            job.tenant_id, job.env, circuit, version, event, trigger, depth=depth, receipts=(receipt,)
        )
        if record is None:
            return None
        run.link_execution(record.id)
        if record.status != "ok":
            assert record.error is not None
            if record.error.get("kind") == "already_applied":
                log.info("job was committed by an earlier attempt", job_id=job.id)
                return None
            raise JobFailed(f"execution {record.id} ended {record.status}: {record.error['message']}")
        return record

    def run_circuit(
        self,
        tenant_id: str,
        env: str,
        circuit: str,
        version: str,
        event: Any,
        trigger: str,
        *,
        depth: int = 0,
        receipts: Sequence[str] = (),
        limits: Any = ASYNCHRONOUS,
    ) -> ExecutionRecord | None:
        """One asynchronous execution of a circuit version, stored; ``None`` when ``receipts`` show
        that its work committed before (nothing is run then)."""
        host = self.host
        platform = host.platform
        bundle = platform.bundles.get_bundle(tenant_id, circuit, version)
        if bundle is None:
            raise JobFailed(f"no bundle {circuit} {version} in tenant {tenant_id}")
        store = host.store(tenant_id, env)
        if receipts and store.receipts(list(receipts)):
            return None
        settings = platform.tenants.get_settings(tenant_id)
        deployed = host.deployed(tenant_id, env, settings)
        module = host.runtime.load(platform.bundles.bundle_wasm(tenant_id, bundle.sha256))
        manifest = bundle.manifest
        crm_records = host.crm_outbox.records_for(tenant_id, env, settings)
        timeline = ExecutionTimeline(host.telemetry.execution_observer(tenant_id, env, circuit, trigger))
        executor = Executor(
            host.runtime,
            crm_records or (ReceiptedRecords(store, receipts) if receipts else store),
            host.http,
            triggers=deployed.registry,
            tenant=records_tenant(tenant_id, env),
            observer=timeline,
        )
        options = ExecutionOptions(
            limits=limits,
            allowed_hosts=manifest.allowed_hosts(),
            credentials={
                n: settings.named_credentials[n] for n in manifest.credentials.names if n in settings.named_credentials
            },
            allowed_networks=settings.callout_allowed_networks,
            jobs=self.sink(tenant_id, env, deployed.versions, depth),
        )
        with structlog.contextvars.bound_contextvars(tenant=tenant_id, environment=env):
            try:
                record = executor.run(module, event, options)
            finally:
                if crm_records is not None:
                    crm_records.close()
            if crm_records is not None and record.committed:
                host.crm_outbox.link(crm_records, record.id)
            platform.executions.save_execution(
                ExecutionEntry(
                    id=record.id,
                    tenant_id=tenant_id,
                    env=env,
                    circuit=circuit,
                    version=f"{circuit}@{version}",
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
            log.info("job execution", trigger=trigger, status=record.status, execution_id=record.id)
        return record
