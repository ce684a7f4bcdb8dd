"""Batch circuits: ``start``, then ``execute`` on each chunk of the query's records, then ``finish``.

A batch is a chain of ``circuit.batch`` jobs on the server's queue, each keyed ``batch:<id>:<phase>``
so that a re-sent enqueue makes one job: ``start`` enqueues chunk 0, chunk n enqueues chunk n+1 (or
``finish`` after a short chunk), each after its own work. Every phase is one execution of the
circuit version active when the batch started, under the asynchronous limits, stored and linked to
its job, committed at most once (receipt ``job:<id>`` in its records transaction):

- ``{"kind": "batch-start", "batch_id", "payload"}``: its output ``{"query": "SELECT ..."}`` is the
  batch's SOQL. Skipped when the batch was started with a query.
- ``{"kind": "batch-execute", "batch_id", "chunk": n, "records": [...], "payload"}``: up to
  ``scope`` records in Id order. A chunk that does not end ``ok`` is counted failed; the next runs.
- ``{"kind": "batch-finish", "batch_id", "payload", "summary": {chunks_ok, chunks_failed,
  records_processed, records_failed}}``.

A phase's job that dies (out of attempts: its work kept raising, or its worker kept being killed
mid-job) is reported to ``on_batch_job_dead`` in the transaction that marks it dead (``jobs/README.md``,
``on_dead``): a dead chunk is counted failed and the next chunk (or ``finish``) is enqueued there, so
the batch goes on; a dead ``start`` or ``finish`` ends the batch ``failed`` with the job's error.

Chunks are keyset pages (``Id > after ORDER BY Id LIMIT scope``, added to the parsed query, never
to its text), so no worker holds more than one chunk. A chunk's bounds are stored before its
circuit runs (``platform/batch_rows.py``): a re-run attempt reads the same records, the next chunk
starts after them, and the receipt keeps a chunk that committed from committing again.
"""

from __future__ import annotations

import dataclasses
import secrets
from typing import Any

import structlog
from sqlalchemy.engine import Connection

from ..errors import QueryError, Rejected
from ..jobs import Job, JobRequest, JobRun, RetryPolicy
from ..platform import NotFound
from ..platform.batch_rows import BatchRow, BatchRows, BatchState, ChunkRow, ChunkState
from ..soql.parser import And, Bind, Comparison, Field, Query, SortKey, parse
from .async_circuits import AsyncCircuits, CircuitHost

log = structlog.get_logger("circuit.server.batches")

BATCH_KIND = "circuit.batch"
DEFAULT_SCOPE = 200
MAX_SCOPE = 2_000
BATCH_BACKOFF_S = 2.0
"""A phase whose job fails (the database, not the circuit: a circuit's failure is the chunk's
outcome) or whose worker dies is tried again after this (doubling), the tenant's
``batch_max_attempts`` when the batch started in all (each job passes its own on)."""
_ID = Field(("Id",))


def batch_query(soql: str) -> Query:
    """The batch's query, parsed and checked: the host pages it by Id, so it may not order or cut it."""
    parsed = parse(soql)
    if parsed.count:
        raise QueryError("a batch query selects records: COUNT() is not allowed")
    if parsed.order_by or parsed.limit is not None or parsed.offset is not None:
        raise QueryError("a batch query is read in Id order, chunk by chunk: leave out ORDER BY, LIMIT and OFFSET")
    return parsed


def chunk_query(parsed: Query, after_id: str | None, last_id: str | None, limit: int | None) -> Query:
    """``after_id < Id <= last_id`` (either bound optional) and the query's own condition, by Id."""
    conditions = [c for c in (parsed.where,) if c is not None]
    if after_id is not None:
        conditions.append(Comparison(_ID, ">", Bind("batch_after_id")))
    if last_id is not None:
        conditions.append(Comparison(_ID, "<=", Bind("batch_last_id")))
    where = None if not conditions else conditions[0] if len(conditions) == 1 else And(tuple(conditions))
    return dataclasses.replace(parsed, where=where, order_by=(SortKey(_ID, nulls_first=False),), limit=limit)


class BatchCircuits:
    """Starts batches and runs their jobs; the progress rows are ``rows``."""

    def __init__(self, host: CircuitHost, circuits: AsyncCircuits) -> None:
        self.host = host
        self.circuits = circuits
        self.rows = BatchRows(host.platform.database)
        host.jobs.register(BATCH_KIND, self.run_batch_job, on_dead=self.on_batch_job_dead)

    def start(
        self, tenant_id: str, env: str, circuit: str, scope: int, query: str | None, payload: Any = None
    ) -> BatchRow:
        """A running batch of the circuit's active version, and its first job, in one transaction."""
        if not 1 <= scope <= MAX_SCOPE:
            raise Rejected(f"scope must be between 1 and {MAX_SCOPE} records")
        if query is not None:
            batch_query(query)
        version = self.host.deployed(tenant_id, env).versions.get(circuit)
        if version is None:
            raise NotFound(f"no circuit {circuit!r} is active in {env}")
        batch_id = secrets.token_hex(12)
        attempts = self.host.platform.tenants.get_settings(tenant_id).batch_max_attempts
        with self.host.platform.database.write() as conn:
            self.rows.insert(conn, batch_id, tenant_id, env, circuit, version, scope, query, payload)
            start = self._request(tenant_id, env, circuit, batch_id, "start", attempts)
            self.host.jobs.queue.enqueue(start, connection=conn)
        row = self.rows.get(tenant_id, batch_id)
        assert row is not None
        log.info("batch started", batch_id=batch_id, circuit=circuit, env=env, scope=scope)
        return row

    def cancel(self, tenant_id: str, batch_id: str) -> BatchRow:
        """No further chunk starts; the chunk running now finishes. An ended batch stays as it is."""
        row = self.rows.get(tenant_id, batch_id)
        if row is None:
            raise NotFound(f"no batch {batch_id}")
        self.rows.end(batch_id, BatchState.CANCELLED, "cancelled")
        cancelled = self.rows.get(tenant_id, batch_id)
        assert cancelled is not None
        return cancelled

    def _request(
        self, tenant_id: str, env: str, circuit: str, batch_id: str, phase: str, attempts: int, **extra: Any
    ) -> JobRequest:
        key = f"batch:{batch_id}:{phase}"
        payload = {"batch_id": batch_id, "phase": phase, **extra}
        retry = RetryPolicy(max_attempts=attempts, backoff_s=BATCH_BACKOFF_S)
        return JobRequest(BATCH_KIND, payload, tenant_id=tenant_id, circuit=circuit, env=env, retry=retry, key=key)

    def _enqueue(
        self, batch: BatchRow, phase: str, attempts: int, *, connection: Connection | None = None, **extra: Any
    ) -> None:
        request = self._request(batch.tenant_id, batch.env, batch.circuit, batch.id, phase, attempts, **extra)
        self.host.jobs.queue.enqueue(request, connection=connection)

    def _enqueue_after(
        self, batch: BatchRow, chunk: ChunkRow, attempts: int, *, connection: Connection | None = None
    ) -> None:
        """What follows a chunk whose outcome is recorded: the next chunk, or ``finish`` after a short one."""
        if chunk.records < batch.scope:
            self._enqueue(batch, "finish", attempts, connection=connection)
        else:
            n = chunk.n + 1
            self._enqueue(batch, str(n), attempts, connection=connection, n=n, after_id=chunk.last_id)

    # -- the jobs ----------------------------------------------------------------------------

    def run_batch_job(self, run: JobRun) -> None:
        payload = run.job.payload
        batch = self.rows.get(run.job.tenant_id, str(payload["batch_id"]))
        if batch is None or batch.state != BatchState.RUNNING:
            log.info("batch is not running", job_id=run.job.id, batch_id=payload["batch_id"])
            return
        phase = str(payload["phase"])
        if phase == "start":
            self._run_start(run, batch)
        elif phase == "finish":
            self._run_finish(run, batch)
        else:
            self._run_chunk(run, batch, int(payload["n"]), payload["after_id"])

    def on_batch_job_dead(self, job: Job, connection: Connection) -> None:
        """A phase's job died (``on_dead``, in the transaction that marks it dead; may be told twice).

        A chunk is counted failed and the batch moves on; a dead start or finish fails the batch. A
        chunk that died before its bounds were stored has no records to count: the batch fails too.
        """
        payload = job.payload
        batch = self.rows.get(job.tenant_id, str(payload["batch_id"]), connection=connection)
        if batch is None or batch.state != BatchState.RUNNING:
            return
        phase = str(payload["phase"])
        why = f"job {job.id} died after {job.attempts} attempts: {job.last_error}"
        chunk = (
            None
            if phase in ("start", "finish")
            else self.rows.chunk(batch.id, int(payload["n"]), connection=connection)
        )
        if chunk is None:
            where = phase if phase in ("start", "finish") else f"chunk {payload['n']}, before its records were read"
            self.rows.end(batch.id, BatchState.FAILED, f"{where}: {why}", connection=connection)
            log.warning("batch failed: its job died", batch_id=batch.id, phase=phase, job_id=job.id)
            return
        if chunk.state == ChunkState.RUNNING:
            self.rows.end_chunk(batch.id, chunk.n, ChunkState.FAILED, None, why, connection=connection)
        self._enqueue_after(batch, chunk, job.max_attempts, connection=connection)
        log.warning("batch chunk failed: its job died", batch_id=batch.id, chunk=chunk.n, job_id=job.id)

    def _run_start(self, run: JobRun, batch: BatchRow) -> None:
        query = batch.query
        if query is None:
            event = {"kind": "batch-start", "batch_id": batch.id, "payload": batch.payload}
            record = self._execute(run, batch, event, "start")
            if record is None:
                self.rows.end(batch.id, BatchState.FAILED, "start committed, but its query was not stored")
                return
            if record.status != "ok":
                self.rows.end(batch.id, BatchState.FAILED, f"start: execution {record.id} ended {record.status}")
                return
            output = record.output
            query = output.get("query") if isinstance(output, dict) else None
            if not isinstance(query, str):
                self.rows.end(batch.id, BatchState.FAILED, 'start returned no {"query": "SELECT ..."}')
                return
        try:
            total = self._count(batch, batch_query(query))
        except QueryError as e:
            self.rows.end(batch.id, BatchState.FAILED, f"the batch query: {e}")
            return
        self.rows.set_query(batch.id, query, total)
        self._enqueue(batch, "0", run.job.max_attempts, n=0, after_id=None)

    def _run_chunk(self, run: JobRun, batch: BatchRow, n: int, after_id: str | None) -> None:
        assert batch.query is not None
        parsed = batch_query(batch.query)
        chunk = self.rows.chunk(batch.id, n)
        records: list[dict[str, Any]] | None = None
        if chunk is None:
            records = self._read(batch, chunk_query(parsed, after_id, None, batch.scope), after_id, None)
            if not records:
                self._enqueue(batch, "finish", run.job.max_attempts)
                return
            chunk = self.rows.fix_chunk(batch.id, n, after_id, str(records[-1]["Id"]), len(records))
        if chunk.state == ChunkState.RUNNING:
            if records is None or records[-1]["Id"] != chunk.last_id:  # a re-run: the bounds stored first
                bounded = chunk_query(parsed, chunk.after_id, chunk.last_id, None)
                records = self._read(batch, bounded, chunk.after_id, chunk.last_id)
            self._execute_chunk(run, batch, chunk, records)
        self._enqueue_after(batch, chunk, run.job.max_attempts)

    def _execute_chunk(self, run: JobRun, batch: BatchRow, chunk: ChunkRow, records: list[dict[str, Any]]) -> None:
        event = {
            "kind": "batch-execute",
            "batch_id": batch.id,
            "chunk": chunk.n,
            "records": records,
            "payload": batch.payload,
        }
        record = self._execute(run, batch, event, str(chunk.n))
        if record is None or record.status == "ok":
            self.rows.end_chunk(batch.id, chunk.n, ChunkState.OK, record.id if record else None)
            return
        error = f"{record.error['kind']}: {record.error['message']}" if record.error else record.status
        self.rows.end_chunk(batch.id, chunk.n, ChunkState.FAILED, record.id, error)
        log.info("batch chunk failed", batch_id=batch.id, chunk=chunk.n, execution_id=record.id, error=error)

    def _run_finish(self, run: JobRun, batch: BatchRow) -> None:
        summary = self.rows.summary(batch.id)
        event = {"kind": "batch-finish", "batch_id": batch.id, "payload": batch.payload, "summary": summary.as_event()}
        record = self._execute(run, batch, event, "finish")
        if record is None or record.status == "ok":
            self.rows.end(batch.id, BatchState.FINISHED)
        else:
            self.rows.end(batch.id, BatchState.FAILED, f"finish: execution {record.id} ended {record.status}")
        log.info("batch finished", batch_id=batch.id, **summary.as_event())

    # -- the records and the executions ------------------------------------------------------

    def _execute(self, run: JobRun, batch: BatchRow, event: dict[str, Any], phase: str) -> Any:
        """One execution of the batch's circuit, receipted by the job; ``None`` when an earlier
        attempt of this job committed it (an execution that found that out counts the same)."""
        record = self.circuits.run_circuit(
            batch.tenant_id,
            batch.env,
            batch.circuit,
            batch.version,
            event,
            f"batch:{batch.id}:{phase}",
            receipts=(f"job:{run.job.id}",),
        )
        if record is None:
            return None
        run.link_execution(record.id)
        if record.status != "ok" and record.error is not None and record.error.get("kind") == "already_applied":
            return None
        return record

    def _read(self, batch: BatchRow, query: Query, after_id: str | None, last_id: str | None) -> list[dict[str, Any]]:
        binds = {"batch_after_id": after_id, "batch_last_id": last_id}
        transaction = self.host.store(batch.tenant_id, batch.env).begin()
        try:
            return transaction.query(query, binds, max_rows=MAX_SCOPE * 10).records
        finally:
            transaction.close()

    def _count(self, batch: BatchRow, parsed: Query) -> int:
        transaction = self.host.store(batch.tenant_id, batch.env).begin()
        try:
            counted = dataclasses.replace(parsed, fields=(), count=True)
            return transaction.query(counted, {}, max_rows=0).total_size
        finally:
            transaction.close()
