"""The embedded job queue: jobs in the SQLite control-plane file, run by in-process worker threads.

SQLite has no ``SKIP LOCKED``: a worker claims jobs in a short ``BEGIN IMMEDIATE`` transaction
that also takes back stalled jobs (lease expired). Each claimed job gets a lease token and an
expiry that the worker's heartbeat extends; every later write about the job (heartbeat,
completion, failure) is conditional on that token, so a worker that lost its lease changes nothing.
"""

from __future__ import annotations

import dataclasses
import json
import secrets
import threading
import time
from collections.abc import Mapping
from concurrent.futures import Future, ThreadPoolExecutor, wait
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import sqlalchemy as sa
import structlog
from sqlalchemy.engine import Connection

from ..errors import Rejected
from ..migrations import job_queue, upgrade
from ..platform.models import Conflict, NotFound
from ..storage_engine import make_engine
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
MAX_ERROR = 4000


def utcnow() -> datetime:
    return datetime.now(UTC)


class EmbeddedRun:
    """One attempt, fenced by its lease token."""

    def __init__(self, queue: EmbeddedJobQueue, job: Job, token: str) -> None:
        self._queue = queue
        self._job = job
        self.token = token
        self.lost = threading.Event()

    @property
    def job(self) -> Job:
        return self._job

    def cancel_requested(self) -> bool:
        current = self._queue.get(self._job.id)
        return current is None or current.cancel_requested

    def link_execution(self, execution_id: str) -> None:
        t = self._queue.tables.jobs
        with self._queue.write() as conn:
            mine = sa.and_(t.c.id == self._job.id, t.c.lease_token == self.token)
            conn.execute(t.update().where(mine).values(execution_id=execution_id))

    def complete_in(self, connection: Connection) -> None:
        if self.lost.is_set() or not self._queue.finish(self, connection=connection):
            raise LeaseLost(f"job {self._job.id} was taken over by another worker")


class EmbeddedJobQueue(QueueDatabase):
    """Jobs in ``<prefix>jobs`` of a SQLite file (or any SQLAlchemy database, for tests)."""

    backend = "embedded"

    def __init__(
        self,
        url: str | Path,
        *,
        prefix: str = "cs_",
        lease_s: float = 30.0,
        poll_s: float = 0.5,
        clock: Any = utcnow,
    ) -> None:
        self.engine = make_engine(url)
        self.tables = build_job_tables(prefix)
        self.lease = timedelta(seconds=lease_s)
        self.poll_s = poll_s
        self.clock = clock
        self._wake = threading.Event()  # a job was enqueued or finished in this process
        self._closed = False
        try:
            upgrade(self.engine, job_queue(prefix))
        except BaseException:
            self.engine.dispose()
            raise

    # -- the port ---------------------------------------------------------------------------

    def enqueue(self, request: JobRequest, *, connection: Connection | None = None) -> Job | None:
        if connection is not None:
            return self._enqueue(connection, request)
        with self.write() as conn:
            job = self._enqueue(conn, request)
        self._wake.set()
        return job

    def _enqueue(self, conn: Connection, request: JobRequest) -> Job | None:
        t = self.tables.jobs
        if request.key is not None:
            existing = conn.execute(
                sa.select(t).where(t.c.tenant_id == request.tenant_id, t.c.key == request.key)
            ).first()
            if existing is not None:
                return self._job(existing)
        if request.queueing_lock is not None:
            held = conn.execute(
                sa.select(t.c.id).where(t.c.queueing_lock == request.queueing_lock, t.c.state == JobState.TODO)
            ).first()
            if held is not None:
                return None
        now = self.clock()
        row = conn.execute(
            t.insert()
            .values(
                kind=request.kind,
                tenant_id=request.tenant_id,
                circuit=request.circuit,
                env=request.env,
                payload=request.payload_json(),
                state=JobState.TODO,
                attempts=0,
                retry=json.dumps(request.retry.as_json()),
                run_at=to_db(request.run_at or now),
                priority=request.priority,
                queueing_lock=request.queueing_lock,
                lock=request.lock,
                key=request.key,
                created_at=to_db(now),
                cancel_requested=False,
            )
            .returning(*t.c)
        ).one()
        return self._job(row)

    def get(self, job_id: int, *, tenant_id: str | None = None) -> Job | None:
        t = self.tables.jobs
        query = sa.select(t).where(t.c.id == job_id)
        if tenant_id is not None:
            query = query.where(t.c.tenant_id == tenant_id)
        with self.engine.connect() as conn:
            row = conn.execute(query).first()
        return None if row is None else self._job(row)

    def list_jobs(self, filters: JobFilter) -> list[Job]:
        t = self.tables.jobs
        query = sa.select(t).order_by(t.c.id.desc()).limit(max(1, min(filters.limit, 1000)))
        for column, value in (
            (t.c.tenant_id, filters.tenant_id),
            (t.c.kind, filters.kind),
            (t.c.state, filters.state),
            (t.c.circuit, filters.circuit),
            (t.c.env, filters.env),
        ):
            if value is not None:
                query = query.where(column == value)
        if filters.before_id is not None:
            query = query.where(t.c.id < filters.before_id)
        with self.engine.connect() as conn:
            return [self._job(row) for row in conn.execute(query)]

    def count_jobs(self) -> dict[tuple[str, JobState], int]:
        t = self.tables.jobs
        query = sa.select(t.c.kind, t.c.state, sa.func.count()).group_by(t.c.kind, t.c.state)
        with self.engine.connect() as conn:
            return {(str(kind), JobState(state)): int(n) for kind, state, n in conn.execute(query)}

    def cancel(self, job_id: int, *, tenant_id: str | None = None) -> Job:
        t = self.tables.jobs
        with self.write() as conn:
            job = self._owned(conn, job_id, tenant_id)
            if job.state in FINISHED:
                raise Conflict(f"job {job_id} is already {job.state}")
            if job.state == JobState.TODO:
                values: dict[str, Any] = {"state": JobState.CANCELLED, "finished_at": to_db(self.clock())}
            else:
                values = {"cancel_requested": True}
            conn.execute(t.update().where(t.c.id == job_id).values(**values))
            return self._owned(conn, job_id, tenant_id)

    def retry(self, job_id: int, *, tenant_id: str | None = None) -> Job:
        t = self.tables.jobs
        with self.write() as conn:
            job = self._owned(conn, job_id, tenant_id)
            if job.state != JobState.DEAD:
                raise Conflict(f"job {job_id} is {job.state}: only a dead job can be retried")
            conn.execute(
                t.update()
                .where(t.c.id == job_id)
                .values(state=JobState.TODO, run_at=to_db(self.clock()), finished_at=None, cancel_requested=False)
            )
            job = self._owned(conn, job_id, tenant_id)
        self._wake.set()
        return job

    def purge_finished(self, older_than: timedelta) -> int:
        t = self.tables.jobs
        cutoff = to_db(self.clock() - older_than)
        with self.write() as conn:
            return int(conn.execute(t.delete().where(t.c.state.in_(list(FINISHED)), t.c.finished_at < cutoff)).rowcount)

    def last_tick(self, schedule_id: str) -> datetime | None:
        s = self.tables.schedules
        with self.engine.connect() as conn:
            return from_db(conn.execute(sa.select(s.c.last_tick).where(s.c.schedule_id == schedule_id)).scalar())

    def enqueue_tick(self, schedule: PeriodicSchedule, tick: datetime) -> Job | None:
        with self.write() as conn:
            if not claim_tick(conn, self.tables.schedules, schedule.id, tick):
                return None
            job = self._enqueue(conn, schedule.request(tick))
        self._wake.set()
        return job

    # -- the worker -------------------------------------------------------------------------

    def run_worker(
        self,
        handlers: Mapping[str, JobHandler],
        *,
        concurrency: int,
        stopping: threading.Event,
        on_dead: Mapping[str, DeadJobHandler] | None = None,
    ) -> None:
        if concurrency < 1:
            raise Rejected("concurrency must be at least 1")
        dead = dict(on_dead or {})
        running: dict[int, tuple[EmbeddedRun, Future[None]]] = {}
        next_beat = time.monotonic()
        with ThreadPoolExecutor(concurrency, thread_name_prefix="circuit-job") as pool:
            while not stopping.is_set():
                self._wake.clear()  # a wake-up from here on is kept for the wait below
                for job_id in [i for i, (_, f) in running.items() if f.done()]:
                    del running[job_id]
                free = concurrency - len(running)
                claimed = self._claim_logged(list(handlers), free, dead) if free > 0 else []
                for run in claimed:
                    running[run.job.id] = (run, pool.submit(self._run, handlers[run.job.kind], run, dead))
                if time.monotonic() >= next_beat:
                    self.heartbeat([r for r, _ in running.values()])
                    next_beat = time.monotonic() + self.lease.total_seconds() / 3
                if len(claimed) < free or free == 0:
                    self._wake.wait(self.poll_s)
            while pending := [f for _, f in running.values() if not f.done()]:  # finish running jobs, leased
                self.heartbeat([r for r, f in running.values() if not f.done()])
                wait(pending, timeout=self.lease.total_seconds() / 3)

    def _claim_logged(self, kinds: list[str], limit: int, on_dead: Mapping[str, DeadJobHandler]) -> list[EmbeddedRun]:
        try:
            return self.claim(kinds, limit, on_dead)
        except sa.exc.OperationalError:  # the database is busy or gone: try again after the poll interval
            log.exception("claiming jobs failed")
            return []

    def claim(
        self, kinds: list[str], limit: int, on_dead: Mapping[str, DeadJobHandler] | None = None
    ) -> list[EmbeddedRun]:
        """Take back stalled jobs (telling ``on_dead`` of those that die), then lease up to ``limit``
        due jobs of ``kinds``, in one transaction."""
        if not kinds:
            return []
        t = self.tables.jobs
        now = to_db(self.clock())
        due = sa.or_(
            sa.and_(t.c.state == JobState.TODO, t.c.run_at <= now, t.c.kind.in_(kinds)),
            sa.and_(t.c.state == JobState.DOING, t.c.lease_expires_at < now),
        )
        with self.engine.connect() as conn:  # a read first: an idle worker never takes the write lock
            if conn.execute(sa.select(sa.exists().where(due))).scalar() is not True:
                return []
        with self.write() as conn:
            self._recover_stalled(conn, now, on_dead or {})
            other = t.alias("other")
            blocked = sa.exists().where(
                other.c.lock == t.c.lock,
                other.c.id != t.c.id,
                sa.or_(other.c.state == JobState.DOING, sa.and_(other.c.state == JobState.TODO, other.c.id < t.c.id)),
            )
            rows = conn.execute(
                sa.select(t)
                .where(t.c.state == JobState.TODO, t.c.run_at <= now, t.c.kind.in_(kinds))
                .where(sa.or_(t.c.lock.is_(None), ~blocked))
                .order_by(t.c.priority.desc(), t.c.id)
                .limit(limit)
            ).all()
            runs, locks = [], set()
            for row in rows:
                if row.lock is not None and row.lock in locks:
                    continue
                locks.add(row.lock)
                token = secrets.token_hex(16)
                conn.execute(
                    t.update()
                    .where(t.c.id == row.id)
                    .values(state=JobState.DOING, lease_token=token, lease_expires_at=now + self.lease)
                )
                runs.append(EmbeddedRun(self, dataclasses.replace(self._job(row), state=JobState.DOING), token))
            return runs

    def _recover_stalled(self, conn: Connection, now: datetime, on_dead: Mapping[str, DeadJobHandler]) -> None:
        """Jobs whose lease expired lost their worker: that attempt failed; retry now or, out of attempts, die."""
        t = self.tables.jobs
        stalled = conn.execute(
            sa.select(t.c.id, t.c.kind, t.c.attempts, t.c.retry).where(
                t.c.state == JobState.DOING, t.c.lease_expires_at < now
            )
        ).all()
        for job_id, kind, attempts, retry in stalled:
            dead = attempts + 1 >= RetryPolicy.from_json(json.loads(retry)).max_attempts
            log.warning("job lease expired", job_id=job_id, attempt=attempts + 1, dead=dead)
            conn.execute(
                t.update()
                .where(t.c.id == job_id)
                .values(
                    state=JobState.DEAD if dead else JobState.TODO,
                    attempts=attempts + 1,
                    run_at=now,
                    finished_at=now if dead else None,
                    last_error="the worker stopped heartbeating (lease expired)",
                    lease_token=None,
                    lease_expires_at=None,
                )
            )
            if dead:
                tell_dead(on_dead.get(kind), self._owned(conn, job_id, None), conn)

    def heartbeat(self, runs: list[EmbeddedRun]) -> None:
        """Extend the leases of running jobs; a run whose lease is gone is marked lost."""
        if not runs:
            return
        t = self.tables.jobs
        expires = to_db(self.clock()) + self.lease
        try:
            with self.write() as conn:
                for run in runs:
                    updated = conn.execute(
                        t.update()
                        .where(t.c.id == run.job.id, t.c.lease_token == run.token)
                        .values(lease_expires_at=expires)
                    ).rowcount
                    if not updated:
                        run.lost.set()
        except sa.exc.OperationalError:
            log.exception("job heartbeat failed")

    def _run(self, handler: JobHandler, run: EmbeddedRun, on_dead: Mapping[str, DeadJobHandler]) -> None:
        try:
            handler(run)
        except BaseException as exc:
            self.fail(run, exc, on_dead.get(run.job.kind))
        else:
            self.finish(run)
        finally:
            self._wake.set()

    def finish(self, run: EmbeddedRun, *, connection: Connection | None = None) -> bool:
        """Mark the job succeeded if ``run`` still holds its lease; False otherwise."""
        t = self.tables.jobs
        statement = (
            t.update()
            .where(t.c.id == run.job.id, t.c.lease_token == run.token, t.c.state == JobState.DOING)
            .values(
                state=JobState.SUCCEEDED,
                attempts=t.c.attempts + 1,
                finished_at=to_db(self.clock()),
                lease_token=None,
                lease_expires_at=None,
            )
        )
        if connection is not None:
            return bool(connection.execute(statement).rowcount)
        with self.write() as conn:
            return bool(conn.execute(statement).rowcount)

    def fail(self, run: EmbeddedRun, exc: BaseException, on_dead: DeadJobHandler | None = None) -> None:
        """Count the failed attempt: ``todo`` again after the backoff, ``cancelled``, or ``dead``
        (``on_dead`` told in the same transaction)."""
        t = self.tables.jobs
        with self.write() as conn:
            row = conn.execute(
                sa.select(t).where(t.c.id == run.job.id, t.c.lease_token == run.token, t.c.state == JobState.DOING)
            ).first()
            if row is None:
                return  # the lease was lost (or the handler completed the job before failing): not ours
            attempts = row.attempts + 1
            now = self.clock()
            policy = RetryPolicy.from_json(json.loads(row.retry))
            if isinstance(exc, JobCancelled) or (row.cancel_requested and not isinstance(exc, LeaseLost)):
                state = JobState.CANCELLED
            elif attempts >= policy.max_attempts:
                state = JobState.DEAD
            else:
                state = JobState.TODO
            conn.execute(
                t.update()
                .where(t.c.id == row.id)
                .values(
                    state=state,
                    attempts=attempts,
                    run_at=to_db(now + policy.delay_after(attempts)) if state == JobState.TODO else row.run_at,
                    finished_at=None if state == JobState.TODO else to_db(now),
                    last_error=describe(exc),
                    lease_token=None,
                    lease_expires_at=None,
                )
            )
            if state == JobState.DEAD:
                tell_dead(on_dead, self._owned(conn, row.id, None), conn)
        log.warning("job failed", job_id=run.job.id, kind=run.job.kind, attempt=attempts, state=str(state))

    # -- rows -------------------------------------------------------------------------------

    def _owned(self, conn: Connection, job_id: int, tenant_id: str | None) -> Job:
        t = self.tables.jobs
        query = sa.select(t).where(t.c.id == job_id)
        if tenant_id is not None:
            query = query.where(t.c.tenant_id == tenant_id)
        row = conn.execute(query).first()
        if row is None:
            raise NotFound(f"no job {job_id}")
        return self._job(row)

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
            payload=json.loads(row.payload),
            state=JobState(row.state),
            attempts=row.attempts,
            max_attempts=RetryPolicy.from_json(json.loads(row.retry)).max_attempts,
            run_at=from_db(row.run_at),
            priority=row.priority,
            queueing_lock=row.queueing_lock,
            lock=row.lock,
            key=row.key,
            created_at=created,
            last_error=row.last_error,
            execution_id=row.execution_id,
            cancel_requested=bool(row.cancel_requested),
        )


def describe(exc: BaseException) -> str:
    text = f"{type(exc).__name__}: {exc}"
    return text if len(text) <= MAX_ERROR else text[: MAX_ERROR - 1] + "…"
