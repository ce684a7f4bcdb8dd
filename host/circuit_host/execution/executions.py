"""One execution end to end: governor, log, transaction, invoke, then commit or roll back.

The runtime only runs the guest; this module owns the execution's lifecycle and its
record: writes commit only when the status is ``ok``, and every execution, failed or
not, yields an ``ExecutionRecord`` with usage, logs and timing.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import structlog

from ..abi.codec import encode
from ..connectors.callout_destinations import Network
from ..connectors.http_client import HttpConnector
from ..connectors.records import DmlOp, RecordsConnector, RecordsTransaction
from ..errors import CircuitError
from ..sandbox.invocation import Invocation, host_error_invocation, outcome_of
from ..sandbox.loaded import Loaded
from ..triggers.firing import Invoker, TriggerFiring
from ..triggers.registry import TriggerRegistry
from .callout_policy import CalloutSession, HostPattern, NamedCredential
from .context import ExecutionContext, running
from .execution_log import ExecutionLog, LogEntry
from .execution_observer import UNOBSERVED, ExecutionObserver
from .governor import Governor, Usage
from .job_intents import JobIntents, JobSink
from .limits import LimitsProfile

BeforeHandle = Callable[[RecordsTransaction], Any]
AfterHandle = Callable[[RecordsTransaction, Any], None]


@dataclass(frozen=True)
class ExecutionOptions:
    limits: LimitsProfile = field(default_factory=LimitsProfile)
    allowed_hosts: tuple[HostPattern, ...] = ()
    credentials: Mapping[str, NamedCredential] = field(default_factory=dict)
    allowed_networks: tuple[Network, ...] = ()  # the tenant's callout_allowed_networks
    jobs: JobSink | None = None  # where jobs.enqueue's jobs go once the execution commits; None: nowhere


@dataclass(frozen=True)
class ExecutionRecord:
    """The outcome of one execution, as stored and as printed by ``circuit run --json``."""

    id: str
    status: str
    output: Any
    error: dict[str, str] | None
    usage: dict[str, Usage]
    logs: list[LogEntry]
    duration_ms: float
    committed: bool
    debug_log: str
    trace_id: str | None = None  # the execution's trace, when tracing is on or the caller sent one

    def to_json(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "status": self.status,
            "output": _jsonable(self.output),
            "error": self.error,
            "usage": {name: {"used": u.used, "limit": u.limit} for name, u in self.usage.items()},
            "logs": [entry.as_dict() for entry in self.logs],
            "duration_ms": self.duration_ms,
            "committed": self.committed,
            "trace_id": self.trace_id,
        }


def _jsonable(value: Any) -> Any:
    if isinstance(value, bytes):
        return {"$bin": value.hex()}
    if isinstance(value, list):
        return [_jsonable(v) for v in value]
    if isinstance(value, dict):
        return {str(k): _jsonable(v) for k, v in value.items()}
    return value


class Executor:
    """Runs executions of loaded modules against one records store and one HTTP connector.

    ``observer`` watches each execution and its host calls (``execution_observer.py``); the
    server passes one that records metrics and traces, labelled for the tenant environment.
    """

    def __init__(
        self,
        runtime: Invoker,
        records: RecordsConnector,
        http: HttpConnector,
        triggers: TriggerRegistry | None = None,
        tenant: str = "default",
        observer: ExecutionObserver = UNOBSERVED,
    ) -> None:
        self.runtime = runtime
        self.records = records
        self.http = http
        self.tenant = tenant
        self.observer = observer
        self.firing = TriggerFiring(runtime, triggers, tenant) if triggers is not None else None

    def run(
        self,
        module: Loaded,
        event: Any,
        options: ExecutionOptions | None = None,
        before_handle: BeforeHandle | None = None,
        after_handle: AfterHandle | None = None,
    ) -> ExecutionRecord:
        """Run one execution. ``before_handle`` may replace the event (e.g. after saving the
        triggering records); ``after_handle`` sees an ``ok`` output before commit. Both run
        inside the execution's transaction, so their writes share its fate."""
        return self._execute(
            f"of {module.sha256[:12]}",
            options,
            lambda context, transaction: self._invoke(module, event, context, transaction, before_handle, after_handle),
        )

    def apply_change(
        self,
        op: DmlOp,
        object_name: str,
        rows: Sequence[Mapping[str, Any]],
        options: ExecutionOptions | None = None,
        external_id: str = "Id",
    ) -> ExecutionRecord:
        """Apply a record change from outside (a webhook, the REST API) as one execution.

        The write itself is the host's and is not charged; the triggers it fires run as in
        any execution, sharing its budget and transaction, and the change commits only if
        all of them succeed.
        """

        def change(context: ExecutionContext, transaction: RecordsTransaction) -> Invocation:
            attributes = {"circuit.dml.operation": op.name, "circuit.dml.object": object_name}
            with context.log.timed("DML", f"{op.name} {object_name}", attributes) as span:
                span.rows = len(rows)
                result = context.records.dml(op, object_name, rows, external_id)
            return Invocation("ok", output={"ids": result.ids, "created": result.created})

        return self._execute(f"{op.name.lower()} {len(rows)} {object_name}", options, change)

    def _execute(
        self,
        label: str,
        options: ExecutionOptions | None,
        body: Callable[[ExecutionContext, RecordsTransaction], Invocation],
    ) -> ExecutionRecord:
        execution_id = uuid.uuid4().hex
        with (
            self.observer.execution(execution_id, label) as observed,
            structlog.contextvars.bound_contextvars(execution_id=execution_id),
        ):
            record = self._execute_observed(execution_id, label, options or ExecutionOptions(), body, observed.trace_id)
            observed.status, observed.duration_ms, observed.usage = record.status, record.duration_ms, record.usage
        return record

    def _execute_observed(
        self,
        execution_id: str,
        label: str,
        options: ExecutionOptions,
        body: Callable[[ExecutionContext, RecordsTransaction], Invocation],
        trace_id: str | None,
    ) -> ExecutionRecord:
        started = time.monotonic()
        governor = Governor(options.limits)
        log = ExecutionLog(execution_id, governor, observer=self.observer)
        transaction = self.records.begin()
        context = ExecutionContext(
            governor=governor,
            log=log,
            records=self.firing.wrap(transaction) if self.firing is not None else transaction,
            http=CalloutSession(
                self.http,
                options.allowed_hosts,
                credentials=options.credentials,
                allowed_networks=options.allowed_networks,
            ),
            jobs=JobIntents(execution_id, options.jobs),
        )
        log.event("EXECUTION_START", f"execution {execution_id} {label}" + (f" trace {trace_id}" if trace_id else ""))
        committed = False
        try:
            with running(context):  # host DML (a change, a saved trigger event) fires triggers for it
                outcome = body(context, transaction)
            if outcome.status == "ok":
                context.jobs.stage(transaction)  # the job outbox: committed with the records, or not at all
                transaction.commit()
                committed = True
        except CircuitError as exc:
            outcome = outcome_of(exc)
        except Exception as exc:  # a connector bug must fail this execution, not the host
            structlog.get_logger("circuit.executions").exception("host error", execution_id=execution_id)
            outcome = host_error_invocation(exc)
        finally:
            if not committed:
                transaction.rollback()
            transaction.close()
        if committed:
            self._hand_over_jobs(execution_id, context)
        duration_ms = round((time.monotonic() - started) * 1000, 3)
        governor.record("timeout_ms", int(duration_ms))
        if outcome.status != "ok":
            log.fatal(f"{outcome.status}: {outcome.error_message}")
        usage = governor.usage()
        log.event("LIMIT_USAGE", "; ".join(f"{name} {u.used} of {u.limit}" for name, u in usage.items() if u.used))
        log.event("EXECUTION_END", f"status {outcome.status}, {'committed' if committed else 'rolled back'}")
        usage = governor.usage()  # log_bytes now counts the closing lines too: the size of ``debug_log``
        error = None
        if outcome.status != "ok":
            error = {"kind": outcome.error_kind or outcome.status, "message": outcome.error_message or ""}
            if outcome.resource:
                error["resource"] = outcome.resource
        return ExecutionRecord(
            id=execution_id,
            status=outcome.status,
            output=outcome.output if outcome.status == "ok" else None,
            error=error,
            usage=usage,
            logs=list(log.entries),
            duration_ms=duration_ms,
            committed=committed,
            debug_log=log.render(),
            trace_id=trace_id,
        )

    def _hand_over_jobs(self, execution_id: str, context: ExecutionContext) -> None:
        """Enqueue the committed execution's jobs. The records are committed by now, so a failure
        here cannot undo them: it is logged, and the jobs wait in the job outbox for the relay
        (``jobs/README.md``; lost only where the records cannot hold an outbox: a CRM)."""
        if not context.jobs.intents:
            return
        try:
            handed = context.jobs.hand_over()
        except Exception as exc:
            structlog.get_logger("circuit.executions").exception("enqueuing jobs failed", execution_id=execution_id)
            context.log.event("JOB_ENQUEUE_FAILED", f"{len(context.jobs.intents)} job(s) not enqueued: {exc}")
            return
        if context.jobs.sink is not None:
            context.log.event("JOBS_ENQUEUED", ", ".join(f"{i.key} {i.circuit}" for i in handed))

    def _invoke(
        self,
        module: Loaded,
        event: Any,
        context: ExecutionContext,
        transaction: RecordsTransaction,
        before_handle: BeforeHandle | None,
        after_handle: AfterHandle | None,
    ) -> Invocation:
        if before_handle is not None:
            event = before_handle(transaction)
        payload = event if isinstance(event, bytes) else encode(event)
        outcome = self.runtime.invoke(module, payload, context)
        if outcome.status == "ok" and after_handle is not None:
            after_handle(transaction, outcome.output)
        return outcome
