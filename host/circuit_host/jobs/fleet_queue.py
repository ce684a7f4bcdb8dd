"""The fleet job queue: Procrastinate on the PostgreSQL that every ``circuit serve`` shares.

Procrastinate owns the jobs (``procrastinate_jobs``: claiming with ``SKIP LOCKED``, LISTEN/NOTIFY,
locks and queueing locks, retries, cancellation, worker heartbeats). ``<prefix>job_details``
holds, per job, what it has no column for: tenant, circuit, environment, idempotency key, last
error, execution link. A job and its details are written in one transaction, through
Procrastinate's ``defer(connection=...)`` on our own connection, so an enqueue can join a
caller's transaction. Handlers are synchronous: Procrastinate runs sync tasks in threads.
"""

from __future__ import annotations

import asyncio
import dataclasses
import functools
import hashlib
import json
import threading
from collections.abc import Awaitable, Callable, Mapping
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import sqlalchemy as sa
import structlog
from procrastinate import App, PsycopgConnector, RetryDecision
from procrastinate import exceptions as procrastinate_errors
from procrastinate import jobs as procrastinate_jobs
from procrastinate.job_context import AbortReason, JobContext
from procrastinate.manager import JobManager
from procrastinate.retry import BaseRetryStrategy
from procrastinate.schema import SchemaManager
from procrastinate.sql import queries as procrastinate_queries
from sqlalchemy.engine import Connection

from ..errors import CircuitError, Rejected
from ..migrations import job_queue, upgrade
from ..platform.models import Conflict, NotFound
from ..storage_engine import make_engine
from .embedded_queue import describe
from .job_model import (
    FINISHED,
    Job,
    JobCancelled,
    JobFilter,
    JobRequest,
    JobState,
    LeaseLost,
    PeriodicSchedule,
    RetryPolicy,
)
from .job_queue import DeadJobHandler, JobHandler, tell_dead
from .job_tables import QueueDatabase, build_job_tables, claim_tick, from_db, to_db

log = structlog.get_logger("circuit.jobs")

STATES = {  # Procrastinate's status -> ours
    "todo": JobState.TODO,
    "doing": JobState.DOING,
    "aborting": JobState.DOING,
    "succeeded": JobState.SUCCEEDED,
    "failed": JobState.DEAD,
    "cancelled": JobState.CANCELLED,
    "aborted": JobState.CANCELLED,
}
NEWEST_FUNCTIONS = ("procrastinate_retry_job_v2", "procrastinate_fetch_job_v2", "procrastinate_defer_jobs_v1")

procrastinate_jobs_table = sa.table(
    "procrastinate_jobs",
    sa.column("id", sa.BigInteger),
    sa.column("status", sa.String),
    sa.column("task_name", sa.String),
    sa.column("args", sa.JSON),
    sa.column("attempts", sa.Integer),
    sa.column("scheduled_at", sa.DateTime(timezone=True)),
    sa.column("priority", sa.Integer),
    sa.column("lock", sa.String),
    sa.column("queueing_lock", sa.String),
    sa.column("abort_requested", sa.Boolean),
    sa.column("worker_id", sa.BigInteger),
)


class SchemaOutdated(CircuitError):
    """The database holds an older Procrastinate schema than the installed Procrastinate needs."""

    kind = "schema_outdated"


def apply_procrastinate_schema(conn: Connection) -> bool:
    """Create Procrastinate's schema unless it exists, under an advisory lock (processes start at once).

    True if this call created it. An older schema is refused: Procrastinate's own migrations
    (``procrastinate schema --migrate``) upgrade it.
    """
    conn.exec_driver_sql("BEGIN")
    try:
        key = int.from_bytes(hashlib.sha256(b"circuit-procrastinate-schema").digest()[:8], "big", signed=True)
        conn.execute(sa.select(sa.func.pg_advisory_xact_lock(key)))
        exists = conn.execute(sa.select(sa.func.to_regclass("procrastinate_jobs"))).scalar() is not None
        if not exists:
            conn.connection.driver_connection.execute(SchemaManager.get_schema())  # type: ignore[union-attr]
        else:
            found = set(
                conn.execute(
                    sa.text("SELECT proname FROM pg_proc WHERE proname = ANY(:names)"),
                    {"names": list(NEWEST_FUNCTIONS)},
                ).scalars()
            )
            missing = sorted(set(NEWEST_FUNCTIONS) - found)
            if missing:
                raise SchemaOutdated(
                    f"Procrastinate's tables in this database are older than the installed Procrastinate "
                    f"(missing {', '.join(missing)}): apply its migrations first"
                )
        conn.exec_driver_sql("COMMIT")
        return not exists
    except BaseException:
        conn.exec_driver_sql("ROLLBACK")
        raise


def conninfo(url: str) -> str:
    """A libpq connection string for Procrastinate's own pool, from our SQLAlchemy URL."""
    return sa.engine.make_url(url).set(drivername="postgresql").render_as_string(hide_password=False)


class PerJobRetry(BaseRetryStrategy):
    """The job's own ``RetryPolicy`` (carried in its arguments), not one per task."""

    def get_retry_decision(self, *, exception: BaseException, job: procrastinate_jobs.Job) -> RetryDecision | None:
        if isinstance(exception, procrastinate_errors.JobAborted | JobCancelled):
            return None
        policy = RetryPolicy.from_json(job.task_kwargs["retry"])
        attempts = job.attempts + 1
        if attempts >= policy.max_attempts:
            return None
        return RetryDecision(retry_at=datetime.now(UTC) + policy.delay_after(attempts))


class DurableOutcomes(JobManager):
    """Procrastinate's job manager, whose recording of an attempt's outcome outlives a connection lost
    meanwhile (a PostgreSQL restart). Procrastinate records it in a task whose failure nobody awaits:
    the job would stay ``doing`` for a worker that still heartbeats, so it would never be seen as
    stalled nor run again. Here the update is retried, with backoff, until it is recorded or the job
    has moved on (an earlier try committed before its connection died)."""

    async def finish_job(
        self, job: procrastinate_jobs.Job, status: procrastinate_jobs.Status, delete_job: bool
    ) -> None:
        await self._until_recorded(job, functools.partial(JobManager.finish_job, self, job, status, delete_job))

    async def retry_job(
        self,
        job: procrastinate_jobs.Job,
        retry_at: datetime | None = None,
        priority: int | None = None,
        queue: str | None = None,
        lock: str | None = None,
    ) -> None:
        record = functools.partial(JobManager.retry_job, self, job, retry_at, priority, queue, lock)
        await self._until_recorded(job, record)

    async def _until_recorded(self, job: procrastinate_jobs.Job, record: Callable[[], Awaitable[None]]) -> None:
        delay = 0.2
        while True:
            try:
                await record()
                return
            except procrastinate_errors.ConnectorException as exc:
                log.warning("recording a job's outcome failed; retrying", job_id=job.id, error=str(exc))
            while True:  # until the database answers again
                await asyncio.sleep(delay)
                delay = min(delay * 2, 5.0)
                try:
                    rows = await self.connector.execute_query_all_async(
                        "SELECT status::text AS status, worker_id FROM procrastinate_jobs WHERE id = %(job_id)s",
                        job_id=job.id,
                    )
                    break
                except procrastinate_errors.ConnectorException:
                    continue
            if not rows or rows[0]["status"] != "doing" or rows[0]["worker_id"] != job.worker_id:
                return  # recorded after all (or another worker took the job over): nothing left to do


class FleetRun:
    """One attempt, run by the Procrastinate worker whose id is on the job row."""

    def __init__(self, queue: FleetJobQueue, job: Job, context: JobContext) -> None:
        self._queue = queue
        self._job = job
        self._context = context

    @property
    def job(self) -> Job:
        return self._job

    def cancel_requested(self) -> bool:
        return self._context.abort_reason() == AbortReason.USER_REQUEST

    def link_execution(self, execution_id: str) -> None:
        d = self._queue.tables.details
        with self._queue.engine.connect() as conn:
            conn.execute(d.update().where(d.c.job_id == self._job.id).values(execution_id=execution_id))

    def complete_in(self, connection: Connection) -> None:
        j = procrastinate_jobs_table
        row = connection.execute(
            sa.select(j.c.status, j.c.worker_id).where(j.c.id == self._job.id).with_for_update()
        ).first()
        if row is None or row.status != "doing" or row.worker_id != self._context.job.worker_id:
            raise LeaseLost(f"job {self._job.id} was taken over by another worker")


class FleetJobQueue(QueueDatabase):
    """Procrastinate jobs plus ``<prefix>job_details`` on one PostgreSQL database."""

    backend = "fleet"

    def __init__(
        self,
        url: str | Path,
        *,
        prefix: str = "cs_",
        heartbeat_s: float = 10.0,
        stalled_after_s: float = 30.0,
        poll_s: float = 5.0,
    ) -> None:
        self.engine = make_engine(url)
        if self.engine.dialect.name != "postgresql":
            self.engine.dispose()
            raise Rejected("the fleet job queue runs on PostgreSQL")
        self.url = self.engine.url.render_as_string(hide_password=False)
        self.tables = build_job_tables(prefix)
        self.heartbeat_s = heartbeat_s
        self.stalled_after_s = stalled_after_s
        self.poll_s = poll_s
        self.app = App(connector=PsycopgConnector(conninfo=conninfo(self.url)))  # deferring on our connections
        self._closed = False
        try:
            upgrade(self.engine, job_queue(prefix))
            with self.engine.connect() as conn:
                apply_procrastinate_schema(conn)
        except BaseException:
            self.engine.dispose()
            raise

    # -- the port ---------------------------------------------------------------------------

    def enqueue(self, request: JobRequest, *, connection: Connection | None = None) -> Job | None:
        if connection is not None:
            return self._enqueue(connection, request)
        with self.write() as conn:
            return self._enqueue(conn, request)

    def _enqueue(self, conn: Connection, request: JobRequest) -> Job | None:
        d = self.tables.details
        if request.key is not None:
            existing = self._by_key(conn, request)
            if existing is not None:
                return existing
        deferrer = self.app.configure_task(
            request.kind,
            lock=request.lock,
            queueing_lock=request.queueing_lock,
            schedule_at=request.run_at,
            priority=request.priority,
            task_kwargs={"payload": request.payload, "retry": request.retry.as_json()},
            connection=conn.connection.driver_connection,
        )
        conn.exec_driver_sql("SAVEPOINT circuit_enqueue")  # a refused insert must not abort the caller's transaction
        try:
            job_id = deferrer.defer()
            conn.execute(
                d.insert().values(
                    job_id=job_id,
                    kind=request.kind,
                    tenant_id=request.tenant_id,
                    circuit=request.circuit,
                    env=request.env,
                    key=request.key,
                    retry=json.dumps(request.retry.as_json()),
                    created_at=to_db(datetime.now(UTC)),
                )
            )
        except procrastinate_errors.AlreadyEnqueued:
            conn.exec_driver_sql("ROLLBACK TO SAVEPOINT circuit_enqueue")
            return None
        except sa.exc.IntegrityError:  # another transaction took the same key first
            conn.exec_driver_sql("ROLLBACK TO SAVEPOINT circuit_enqueue")
            return self._by_key(conn, request)
        finally:
            conn.exec_driver_sql("RELEASE SAVEPOINT circuit_enqueue")
        return self._fetch(conn, job_id, None)

    def _by_key(self, conn: Connection, request: JobRequest) -> Job | None:
        d = self.tables.details
        found = conn.execute(
            sa.select(d.c.job_id).where(d.c.tenant_id == request.tenant_id, d.c.key == request.key)
        ).scalar()
        return None if found is None else self._fetch(conn, found, None)

    def get(self, job_id: int, *, tenant_id: str | None = None) -> Job | None:
        with self.engine.connect() as conn:
            return self._fetch(conn, job_id, tenant_id)

    def list_jobs(self, filters: JobFilter) -> list[Job]:
        d = self.tables.details
        j = procrastinate_jobs_table
        query = self._select().order_by(j.c.id.desc()).limit(max(1, min(filters.limit, 1000)))
        for column, value in (
            (d.c.tenant_id, filters.tenant_id),
            (d.c.kind, filters.kind),
            (d.c.circuit, filters.circuit),
            (d.c.env, filters.env),
        ):
            if value is not None:
                query = query.where(column == value)
        if filters.state is not None:
            query = query.where(
                sa.cast(j.c.status, sa.String).in_([s for s, ours in STATES.items() if ours == filters.state])
            )
        if filters.before_id is not None:
            query = query.where(j.c.id < filters.before_id)
        with self.engine.connect() as conn:
            return [self._job(row) for row in conn.execute(query)]

    def count_jobs(self) -> dict[tuple[str, JobState], int]:
        d = self.tables.details
        j = procrastinate_jobs_table
        status = sa.cast(j.c.status, sa.String)
        query = (
            sa.select(d.c.kind, status, sa.func.count())
            .join_from(j, d, d.c.job_id == j.c.id)
            .group_by(d.c.kind, status)
        )
        counts: dict[tuple[str, JobState], int] = {}
        with self.engine.connect() as conn:
            for kind, procrastinate_status, n in conn.execute(query):
                key = (str(kind), STATES[str(procrastinate_status)])
                counts[key] = counts.get(key, 0) + int(n)
        return counts

    def cancel(self, job_id: int, *, tenant_id: str | None = None) -> Job:
        with self.write() as conn:
            job = self._locked(conn, job_id, tenant_id)
            if job.state in FINISHED:
                raise Conflict(f"job {job_id} is already {job.state}")
            self.app.job_manager.cancel_job_by_id(job_id, abort=True, connection=conn.connection.driver_connection)
            found = self._fetch(conn, job_id, tenant_id)
        assert found is not None
        return found

    def retry(self, job_id: int, *, tenant_id: str | None = None) -> Job:
        with self.write() as conn:
            job = self._locked(conn, job_id, tenant_id)
            if job.state != JobState.DEAD:
                raise Conflict(f"job {job_id} is {job.state}: only a dead job can be retried")
            conn.connection.driver_connection.execute(  # type: ignore[union-attr]
                procrastinate_queries["retry_job"],
                {
                    "job_id": job_id,
                    "retry_at": datetime.now(UTC),
                    "new_priority": None,
                    "new_queue_name": None,
                    "new_lock": None,
                },
            )
            found = self._fetch(conn, job_id, tenant_id)
        assert found is not None
        return found

    def purge_finished(self, older_than: timedelta) -> int:
        """A finished job's age is that of its latest event; Procrastinate's own ``delete_old_jobs`` would
        also count the ``scheduled`` event, dated at the run time, which keeps a job cancelled before it."""
        d = self.tables.details
        finished = [status for status, ours in STATES.items() if ours in FINISHED]
        with self.write() as conn:
            purged = conn.execute(
                sa.text(
                    "DELETE FROM procrastinate_jobs AS job WHERE job.status::text = ANY(:finished) AND NOT EXISTS ("
                    " SELECT 1 FROM procrastinate_events AS event WHERE event.job_id = job.id"
                    " AND event.type <> 'scheduled' AND event.at >= now() - make_interval(secs => :seconds))"
                ),
                {"finished": finished, "seconds": older_than.total_seconds()},
            ).rowcount
            left = sa.select(procrastinate_jobs_table.c.id).where(procrastinate_jobs_table.c.id == d.c.job_id)
            conn.execute(d.delete().where(~sa.exists(left)))
        return int(purged)

    def last_tick(self, schedule_id: str) -> datetime | None:
        s = self.tables.schedules
        with self.engine.connect() as conn:
            return from_db(conn.execute(sa.select(s.c.last_tick).where(s.c.schedule_id == schedule_id)).scalar())

    def enqueue_tick(self, schedule: PeriodicSchedule, tick: datetime) -> Job | None:
        with self.write() as conn:
            if not claim_tick(conn, self.tables.schedules, schedule.id, tick):
                return None
            return self._enqueue(conn, schedule.request(tick))

    # -- rows -------------------------------------------------------------------------------

    def _select(self) -> sa.Select[Any]:
        d = self.tables.details
        j = procrastinate_jobs_table
        return sa.select(
            j.c.id,
            sa.cast(j.c.status, sa.String).label("status"),
            j.c.args,
            j.c.attempts,
            j.c.scheduled_at,
            j.c.priority,
            j.c.lock,
            j.c.queueing_lock,
            j.c.abort_requested,
            d.c.kind,
            d.c.tenant_id,
            d.c.circuit,
            d.c.env,
            d.c.key,
            d.c.created_at,
            d.c.last_error,
            d.c.execution_id,
        ).join_from(j, d, d.c.job_id == j.c.id)

    def _fetch(self, conn: Connection, job_id: int, tenant_id: str | None) -> Job | None:
        query = self._select().where(procrastinate_jobs_table.c.id == job_id)
        if tenant_id is not None:
            query = query.where(self.tables.details.c.tenant_id == tenant_id)
        row = conn.execute(query).first()
        return None if row is None else self._job(row)

    def _locked(self, conn: Connection, job_id: int, tenant_id: str | None) -> Job:
        j = procrastinate_jobs_table
        conn.execute(sa.select(j.c.id).where(j.c.id == job_id).with_for_update())
        job = self._fetch(conn, job_id, tenant_id)
        if job is None:
            raise NotFound(f"no job {job_id}")
        return job

    @staticmethod
    def _job(row: Any) -> Job:
        created = from_db(row.created_at)
        assert created is not None
        return Job(
            id=row.id,
            kind=row.kind,
            tenant_id=row.tenant_id,
            circuit=row.circuit,
            env=row.env,
            payload=row.args.get("payload"),
            state=STATES[row.status],
            attempts=row.attempts,
            max_attempts=RetryPolicy.from_json(row.args["retry"]).max_attempts,
            run_at=from_db(row.scheduled_at),
            priority=row.priority,
            queueing_lock=row.queueing_lock,
            lock=row.lock,
            key=row.key,
            created_at=created,
            last_error=row.last_error,
            execution_id=row.execution_id,
            cancel_requested=bool(row.abort_requested),
        )

    def _record_error(self, job_id: int, error: str) -> None:
        d = self.tables.details
        try:
            with self.engine.connect() as conn:
                conn.execute(d.update().where(d.c.job_id == job_id).values(last_error=error))
        except sa.exc.OperationalError:
            log.exception("recording a job's error failed", job_id=job_id)

    # -- the worker -------------------------------------------------------------------------

    def run_worker(
        self,
        handlers: Mapping[str, JobHandler],
        *,
        concurrency: int,
        stopping: threading.Event,
        on_dead: Mapping[str, DeadJobHandler] | None = None,
    ) -> None:
        """Run Procrastinate's worker in an event loop of this thread; restart it if the database drops it."""
        if concurrency < 1:
            raise Rejected("concurrency must be at least 1")
        dead = dict(on_dead or {})
        while not stopping.is_set():
            try:
                asyncio.run(self._serve(handlers, concurrency, stopping, dead))
            except Exception:
                log.exception("the job worker lost its database; restarting")
                stopping.wait(1.0)

    def _procrastinate_app(self, handlers: Mapping[str, JobHandler], on_dead: Mapping[str, DeadJobHandler]) -> App:
        app = App(connector=PsycopgConnector(conninfo=conninfo(self.url), min_size=1, max_size=8))
        app.job_manager = DurableOutcomes(app.connector)
        for kind, handler in handlers.items():
            app.task(name=kind, pass_context=True, retry=PerJobRetry())(self._task(handler, on_dead.get(kind)))
        return app

    def _task(self, handler: JobHandler, on_dead: DeadJobHandler | None) -> Any:
        def run(context: JobContext, **arguments: Any) -> None:
            job_id = context.job.id
            assert job_id is not None
            job = self.get(job_id)
            if job is None:
                raise NotFound(f"job {job_id} has no details row")
            try:
                handler(FleetRun(self, job, context))
            except BaseException as exc:
                self._record_error(job_id, describe(exc))
                if isinstance(exc, JobCancelled) or context.abort_reason() == AbortReason.USER_REQUEST:
                    raise procrastinate_errors.JobAborted(str(exc)) from exc
                if on_dead is not None and job.attempts + 1 >= job.max_attempts:  # PerJobRetry will fail it
                    self._tell_dead_before_failing(job, context, on_dead, describe(exc))
                raise

        return run

    def _tell_dead_before_failing(self, job: Job, context: JobContext, on_dead: DeadJobHandler, error: str) -> None:
        """Procrastinate marks the job failed after this returns, in its own transaction: tell ``on_dead``
        now, while this worker still owns the job (a worker stopping in between leaves a stalled job,
        which ``requeue_stalled`` marks dead and reports again)."""
        j = procrastinate_jobs_table
        try:
            with self.write() as conn:
                row = conn.execute(
                    sa.select(j.c.status, j.c.worker_id, j.c.attempts).where(j.c.id == job.id).with_for_update()
                ).first()
                if row is None or row.status != "doing" or row.worker_id != context.job.worker_id:
                    return
                dead = dataclasses.replace(job, state=JobState.DEAD, attempts=row.attempts + 1, last_error=error)
                tell_dead(on_dead, dead, conn)
        except sa.exc.OperationalError:
            log.exception("telling a dead job's handler failed", job_id=job.id)

    async def _serve(
        self,
        handlers: Mapping[str, JobHandler],
        concurrency: int,
        stopping: threading.Event,
        on_dead: Mapping[str, DeadJobHandler],
    ) -> None:
        app = self._procrastinate_app(handlers, on_dead)
        # Sync tasks run in the loop's default executor (asgiref): size it for the jobs, plus the recovery.
        asyncio.get_running_loop().set_default_executor(
            ThreadPoolExecutor(concurrency + 2, thread_name_prefix="circuit-job")
        )
        async with app.open_async():
            worker = asyncio.create_task(
                app.run_worker_async(
                    concurrency=concurrency,
                    install_signal_handlers=False,
                    update_heartbeat_interval=self.heartbeat_s,
                    stalled_worker_timeout=self.stalled_after_s,
                    fetch_job_polling_interval=self.poll_s,
                    abort_job_polling_interval=self.poll_s,
                )
            )
            recovery = asyncio.create_task(self._recover_stalled(app, on_dead))
            try:
                while not stopping.is_set() and not worker.done():
                    await asyncio.sleep(0.1)
            finally:
                recovery.cancel()
                worker.cancel()  # Procrastinate stops fetching and waits for running jobs
                results = await asyncio.gather(worker, recovery, return_exceptions=True)
            for result in results:
                if isinstance(result, Exception):
                    raise result

    async def _recover_stalled(self, app: App, on_dead: Mapping[str, DeadJobHandler]) -> None:
        """Jobs of workers that stopped heartbeating are retried, or die when out of attempts."""
        while True:
            await asyncio.sleep(self.stalled_after_s / 3)
            try:
                for job in await app.job_manager.get_stalled_jobs(seconds_since_heartbeat=self.stalled_after_s):
                    assert job.id is not None
                    await asyncio.to_thread(self.requeue_stalled, job.id, job.worker_id, on_dead)
            except (procrastinate_errors.ConnectorException, sa.exc.OperationalError):
                log.exception("recovering stalled jobs failed")

    def requeue_stalled(
        self, job_id: int, worker_id: int | None, on_dead: Mapping[str, DeadJobHandler] | None = None
    ) -> None:
        """Retry (or fail) a stalled job, unless it moved on since it was seen stalled: every worker
        runs this recovery, and a job another one already re-queued may be running again. A job that
        dies here is reported to ``on_dead`` of its kind in the same transaction."""
        j = procrastinate_jobs_table
        with self.write() as conn:
            row = conn.execute(
                sa.select(j.c.status, j.c.worker_id, j.c.attempts, j.c.args).where(j.c.id == job_id).with_for_update()
            ).first()
            if row is None or row.status != "doing" or row.worker_id != worker_id:
                return
            dead = row.attempts + 1 >= RetryPolicy.from_json(row.args["retry"]).max_attempts
            log.warning("stalled job", job_id=job_id, attempt=row.attempts + 1, dead=dead)
            d = self.tables.details
            error = "the worker stopped heartbeating (lease expired)"
            conn.execute(d.update().where(d.c.job_id == job_id).values(last_error=error))
            driver = conn.connection.driver_connection
            assert driver is not None
            if dead:
                driver.execute(
                    procrastinate_queries["finish_job"], {"job_id": job_id, "status": "failed", "delete_job": False}
                )
                found = self._fetch(conn, job_id, None)
                if found is not None:
                    tell_dead((on_dead or {}).get(found.kind), found, conn)
            else:
                driver.execute(
                    procrastinate_queries["retry_job"],
                    {
                        "job_id": job_id,
                        "retry_at": datetime.now(UTC),
                        "new_priority": None,
                        "new_queue_name": None,
                        "new_lock": None,
                    },
                )
