"""The job-queue port's behaviour, the same on both backends: embedded (SQLite) and fleet (Procrastinate).

Each test runs against a database of its own; "two workers" are two queue objects with their
own connections, as two processes would have.
"""

from __future__ import annotations

import asyncio
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta

import pytest
import sqlalchemy as sa
from procrastinate import jobs as procrastinate_jobs
from procrastinate.job_context import JobContext

from circuit_host.errors import Rejected
from circuit_host.jobs import (
    DeadJobHandler,
    EmbeddedJobQueue,
    Job,
    JobCancelled,
    JobFilter,
    JobQueue,
    JobRequest,
    JobRun,
    JobState,
    LeaseLost,
    PeriodicSchedule,
    RetryPolicy,
    Worker,
)
from circuit_host.jobs.fleet_queue import FleetJobQueue, FleetRun
from circuit_host.jobs.periodic_ticker import PeriodicTicker
from circuit_host.platform.models import Conflict, NotFound

from .conftest import open_queue

BACKENDS = pytest.mark.parametrize("database_url", ["embedded", "fleet"], indirect=True)


def wait_for(check: Callable[[], object], timeout: float = 15.0) -> None:
    deadline = time.monotonic() + timeout
    while not check():
        if time.monotonic() > deadline:
            raise AssertionError("timed out waiting")
        time.sleep(0.05)


@pytest.fixture
def backend(database_url: str, request: pytest.FixtureRequest) -> str:
    return str(request.node.callspec.params["database_url"])


@pytest.fixture
def queues(backend: str, database_url: str) -> Iterator[Callable[[], JobQueue]]:
    """Opens queues on the test's database (one per simulated process); closes them afterwards."""
    opened: list[JobQueue] = []

    def open_one() -> JobQueue:
        opened.append(open_queue(backend, database_url))
        return opened[-1]

    yield open_one
    for queue in opened:
        queue.close()


@pytest.fixture
def queue(queues: Callable[[], JobQueue]) -> JobQueue:
    return queues()


def state_of(queue: JobQueue, job_id: int) -> JobState:
    job = queue.get(job_id)
    assert job is not None
    return job.state


@BACKENDS
def test_a_job_is_enqueued_run_once_and_succeeds(queue: JobQueue) -> None:
    seen: list[tuple[int, object, int]] = []
    job = queue.enqueue(JobRequest("greet", {"name": "Ada"}, tenant_id="acme", circuit="scorer", env="dev"))
    assert job is not None and job.state == JobState.TODO and job.attempts == 0
    with Worker(queue, {"greet": lambda run: seen.append((run.job.id, run.job.payload, run.job.attempts))}):
        wait_for(lambda: state_of(queue, job.id) == JobState.SUCCEEDED)
    assert seen == [(job.id, {"name": "Ada"}, 0)]
    done = queue.get(job.id, tenant_id="acme")
    assert done is not None and done.attempts == 1 and (done.circuit, done.env) == ("scorer", "dev")
    assert queue.get(job.id, tenant_id="other") is None  # another tenant does not see it


@BACKENDS
def test_jobs_are_counted_by_kind_and_state_across_tenants(queue: JobQueue) -> None:
    for tenant in ("acme", "globex"):
        queue.enqueue(JobRequest("greet", {}, tenant_id=tenant))
    queue.enqueue(JobRequest("sweep", {}, run_at=datetime.now(UTC) + timedelta(hours=1)))
    assert queue.count_jobs() == {("greet", JobState.TODO): 2, ("sweep", JobState.TODO): 1}
    with Worker(queue, {"greet": lambda run: None}):
        wait_for(lambda: queue.count_jobs().get(("greet", JobState.SUCCEEDED)) == 2)
    assert queue.count_jobs() == {("greet", JobState.SUCCEEDED): 2, ("sweep", JobState.TODO): 1}


@BACKENDS
def test_a_failing_job_is_retried_with_backoff_then_dead(queue: JobQueue) -> None:
    attempts: list[float] = []

    def flaky(run: JobRun) -> None:
        attempts.append(time.monotonic())
        raise ValueError(f"attempt {len(attempts)} failed")

    job = queue.enqueue(JobRequest("flaky", retry=RetryPolicy(max_attempts=3, backoff_s=0.4)))
    assert job is not None
    with Worker(queue, {"flaky": flaky}):
        wait_for(lambda: state_of(queue, job.id) == JobState.DEAD)
        time.sleep(0.5)  # nothing runs a dead job
    assert len(attempts) == 3
    assert attempts[1] - attempts[0] >= 0.35 and attempts[2] - attempts[1] >= 0.75  # 0.4 s, then 0.8 s
    dead = queue.get(job.id)
    assert dead is not None and dead.attempts == 3 and dead.last_error == "ValueError: attempt 3 failed"


@BACKENDS
def test_a_dead_job_can_be_retried_by_hand(queue: JobQueue) -> None:
    calls: list[int] = []

    def second_time_lucky(run: JobRun) -> None:
        calls.append(run.job.id)
        if len(calls) == 1:
            raise RuntimeError("not yet")

    job = queue.enqueue(JobRequest("lucky", retry=RetryPolicy(max_attempts=1)))
    assert job is not None
    with pytest.raises(Conflict, match="only a dead job"):
        queue.retry(job.id)
    with Worker(queue, {"lucky": second_time_lucky}):
        wait_for(lambda: state_of(queue, job.id) == JobState.DEAD)
        assert queue.retry(job.id).state == JobState.TODO
        wait_for(lambda: state_of(queue, job.id) == JobState.SUCCEEDED)
    assert calls == [job.id, job.id]
    with pytest.raises(NotFound):
        queue.retry(job.id + 1000)


@BACKENDS
def test_queueing_lock_keeps_one_waiting_job_and_keys_enqueue_once(queue: JobQueue) -> None:
    first = queue.enqueue(JobRequest("sync", 1, tenant_id="acme", queueing_lock="acme:Contact"))
    assert first is not None
    assert queue.enqueue(JobRequest("sync", 2, tenant_id="acme", queueing_lock="acme:Contact")) is None
    keyed = queue.enqueue(JobRequest("sync", "a", tenant_id="acme", key="delivery-1"))
    again = queue.enqueue(JobRequest("sync", "b", tenant_id="acme", key="delivery-1"))
    other_tenant = queue.enqueue(JobRequest("sync", "c", tenant_id="globex", key="delivery-1"))
    assert keyed is not None and again is not None and other_tenant is not None
    assert again.id == keyed.id and again.payload == "a" and other_tenant.id != keyed.id
    with Worker(queue, {"sync": lambda run: None}):
        wait_for(lambda: state_of(queue, first.id) == JobState.SUCCEEDED)
    assert queue.enqueue(JobRequest("sync", 3, tenant_id="acme", queueing_lock="acme:Contact")) is not None


@BACKENDS
def test_a_job_runs_no_sooner_than_its_run_at(queue: JobQueue) -> None:
    ran_at: list[datetime] = []
    run_at = datetime.now(UTC) + timedelta(seconds=1.5)
    job = queue.enqueue(JobRequest("later", run_at=run_at))
    assert job is not None
    with Worker(queue, {"later": lambda run: ran_at.append(datetime.now(UTC))}):
        time.sleep(0.8)
        assert state_of(queue, job.id) == JobState.TODO
        wait_for(lambda: state_of(queue, job.id) == JobState.SUCCEEDED)
    assert ran_at[0] >= run_at - timedelta(milliseconds=50)


@BACKENDS
def test_cancelling_a_waiting_job_stops_it_and_a_running_one_is_asked_to_stop(queue: JobQueue) -> None:
    waiting = queue.enqueue(JobRequest("slow", run_at=datetime.now(UTC) + timedelta(hours=1)))
    running = queue.enqueue(JobRequest("slow", tenant_id="acme"))
    assert waiting is not None and running is not None
    assert queue.cancel(waiting.id).state == JobState.CANCELLED
    with pytest.raises(Conflict, match="already cancelled"):
        queue.cancel(waiting.id)
    with pytest.raises(NotFound):
        queue.cancel(running.id, tenant_id="globex")
    started = threading.Event()

    def slow(run: JobRun) -> None:
        started.set()
        deadline = time.monotonic() + 20
        while not run.cancel_requested():
            if time.monotonic() > deadline:
                return
            time.sleep(0.05)
        raise JobCancelled("stopped on request")

    with Worker(queue, {"slow": slow}):
        assert started.wait(15)
        asked = queue.cancel(running.id, tenant_id="acme")
        assert asked.state == JobState.DOING and asked.cancel_requested
        wait_for(lambda: state_of(queue, running.id) == JobState.CANCELLED)
    assert state_of(queue, waiting.id) == JobState.CANCELLED


@BACKENDS
def test_listing_filters_by_kind_state_tenant_circuit_and_env(queue: JobQueue) -> None:
    a = queue.enqueue(JobRequest("webhook", tenant_id="acme", circuit="scorer", env="production"))
    b = queue.enqueue(JobRequest("queueable", tenant_id="acme", circuit="enrich", env="dev"))
    c = queue.enqueue(JobRequest("webhook", tenant_id="globex", circuit="scorer", env="production"))
    assert a is not None and b is not None and c is not None
    queue.cancel(b.id)

    def ids(**filters: object) -> list[int]:
        return [j.id for j in queue.list_jobs(JobFilter(**filters))]  # type: ignore[arg-type]

    assert ids(tenant_id="acme") == [b.id, a.id]  # newest first
    assert ids(tenant_id="acme", kind="webhook") == [a.id]
    assert ids(tenant_id="acme", state=JobState.CANCELLED) == [b.id]
    assert ids(tenant_id="acme", state=JobState.TODO) == [a.id]
    assert ids(circuit="scorer") == [c.id, a.id]
    assert ids(tenant_id="acme", env="dev") == [b.id]
    assert ids(tenant_id="acme", before_id=b.id) == [a.id]
    assert ids(limit=1) == [c.id]


@BACKENDS
def test_an_enqueue_inside_a_callers_transaction_exists_only_if_it_commits(queue: JobQueue) -> None:
    engine = queue.engine  # type: ignore[attr-defined]
    with engine.connect() as conn:
        conn.exec_driver_sql("BEGIN")
        dropped = queue.enqueue(JobRequest("audit", "rolled back"), connection=conn)
        assert queue.enqueue(JobRequest("audit", "lock", queueing_lock="L"), connection=conn) is not None
        assert queue.enqueue(JobRequest("audit", "refused", queueing_lock="L"), connection=conn) is None
        conn.exec_driver_sql("SELECT 1")  # a refused enqueue left the caller's transaction usable
        conn.exec_driver_sql("ROLLBACK")
    with engine.connect() as conn:
        conn.exec_driver_sql("BEGIN")
        kept = queue.enqueue(JobRequest("audit", "committed"), connection=conn)
        conn.exec_driver_sql("COMMIT")
    assert dropped is not None and kept is not None
    assert [j.payload for j in queue.list_jobs(JobFilter())] == ["committed"]


@BACKENDS
def test_each_cron_tick_runs_once_with_two_workers(queues: Callable[[], JobQueue]) -> None:
    first, second = queues(), queues()
    ticks: list[str] = []
    lock = threading.Lock()

    def record(run: JobRun) -> None:
        with lock:
            ticks.append(run.job.payload["tick"])

    every_second = PeriodicSchedule("heartbeat", "* * * * * *", "tick", payload={"n": 1})
    workers = [
        Worker(q, {"tick": record}, concurrency=2, schedules=[every_second], tick_interval_s=0.1)
        for q in (first, second)
    ]
    for worker in workers:
        worker.start()
    try:
        wait_for(lambda: len(ticks) >= 3)
    finally:
        for worker in workers:
            worker.stop()
    assert len(ticks) >= 3
    assert Counter(ticks).most_common(1)[0][1] == 1  # no tick twice
    assert len(first.list_jobs(JobFilter(kind="tick"))) == len(ticks)


@BACKENDS
@pytest.mark.parametrize("missed", ["once", "skip"])
def test_missed_ticks_after_downtime_run_once_or_are_skipped(queues: Callable[[], JobQueue], missed: str) -> None:
    first, second = queues(), queues()
    hourly = PeriodicSchedule("nightly", "0 * * * *", "tick", timezone="Europe/Paris", missed=missed)  # type: ignore[arg-type]
    before = datetime(2026, 3, 1, 6, 0, tzinfo=UTC)
    assert first.enqueue_tick(hourly, before) is not None  # the last tick before the downtime
    assert first.enqueue_tick(hourly, before) is None  # a tick is enqueued once
    now = datetime(2026, 3, 1, 11, 30, tzinfo=UTC)  # five ticks missed
    tickers = [PeriodicTicker(q, lambda: [hourly], clock=lambda: now) for q in (first, second)]
    enqueued = sum(t.tick_once() for t in tickers) + sum(t.tick_once() for t in tickers)
    jobs = first.list_jobs(JobFilter(kind="tick"))
    if missed == "once":
        assert enqueued == 1
        assert jobs[0].payload["tick"] == "2026-03-01T11:00:00+00:00"  # the newest missed tick
        assert first.last_tick("nightly") == datetime(2026, 3, 1, 11, 0, tzinfo=UTC)
    else:
        assert enqueued == 0 and len(jobs) == 1


@BACKENDS
def test_a_schedule_is_checked_when_registered(queue: JobQueue) -> None:
    with pytest.raises(Rejected, match="not a cron expression"):
        Worker(queue, {"tick": lambda run: None}, schedules=[PeriodicSchedule("s", "every day", "tick")])
    with pytest.raises(Rejected, match="unknown time zone"):
        Worker(queue, {"tick": lambda run: None}, schedules=[PeriodicSchedule("s", "0 * * * *", "tick", "Mars/Base")])
    with pytest.raises(Rejected, match="which no handler runs"):
        Worker(queue, {}, schedules=[PeriodicSchedule("s", "0 * * * *", "tick")])


def abandon_a_claim(queue: JobQueue, kind: str) -> JobRun:
    """Claim one job as a worker that then freezes: no heartbeat, no completion. Its run, for later."""
    if isinstance(queue, EmbeddedJobQueue):
        [run] = queue.claim([kind], 1)
        return run
    assert isinstance(queue, FleetJobQueue)

    async def claim() -> procrastinate_jobs.Job:
        async with queue.app.open_async():
            worker_id = await queue.app.job_manager.register_worker()
            fetched = await queue.app.job_manager.fetch_job(queues=None, worker_id=worker_id)
            assert fetched is not None and fetched.id is not None
            return fetched

    fetched = asyncio.run(claim())
    assert fetched.id is not None
    job = queue.get(fetched.id)
    assert job is not None
    context = JobContext(app=queue.app, job=fetched, start_timestamp=time.time(), abort_reason=lambda: None)
    return FleetRun(queue, job, context)


@BACKENDS
def test_a_job_whose_worker_died_is_run_again_after_its_lease_expires(queue: JobQueue) -> None:
    job = queue.enqueue(JobRequest("stalls", retry=RetryPolicy(max_attempts=3)))
    assert job is not None
    frozen = abandon_a_claim(queue, "stalls")
    assert state_of(queue, job.id) == JobState.DOING
    runs: list[int] = []
    with Worker(queue, {"stalls": lambda run: runs.append(run.job.attempts)}):
        wait_for(lambda: state_of(queue, job.id) == JobState.SUCCEEDED, timeout=20)
    done = queue.get(job.id)
    assert done is not None and runs == [1] and done.attempts == 2
    assert done.last_error is not None and "heartbeat" in done.last_error
    engine: sa.Engine = queue.engine  # type: ignore[attr-defined]
    with engine.connect() as conn:  # the frozen worker wakes up and tries to commit: fenced out
        conn.exec_driver_sql("BEGIN")
        with pytest.raises(LeaseLost):
            frozen.complete_in(conn)
        conn.exec_driver_sql("ROLLBACK")
    assert state_of(queue, job.id) == JobState.SUCCEEDED


def follow_up(queue: JobQueue, told: list[tuple[int, JobState, int, str | None]]) -> DeadJobHandler:
    """A dead-job handler that records what it was told and enqueues a ``next`` job in the transaction
    it is given (as a batch moves on to its next chunk)."""

    def on_dead(job: Job, connection: sa.Connection) -> None:
        told.append((job.id, job.state, job.attempts, job.last_error))
        queue.enqueue(JobRequest("next", {"after": job.id}, key=f"after:{job.id}"), connection=connection)

    return on_dead


@BACKENDS
def test_a_job_out_of_attempts_is_reported_to_its_kinds_dead_handler_once(queue: JobQueue) -> None:
    told: list[tuple[int, JobState, int, str | None]] = []
    nexts: list[object] = []
    job = queue.enqueue(JobRequest("doomed", retry=RetryPolicy(max_attempts=2, backoff_s=0.1)))
    fine = queue.enqueue(JobRequest("fine"))
    assert job is not None and fine is not None

    def doomed(run: JobRun) -> None:
        raise ValueError(f"attempt {run.job.attempts + 1}")

    handlers = {"doomed": doomed, "fine": lambda run: None, "next": lambda run: nexts.append(run.job.payload)}
    with Worker(queue, handlers, on_dead={"doomed": follow_up(queue, told), "fine": follow_up(queue, told)}):
        wait_for(lambda: nexts == [{"after": job.id}])
        time.sleep(0.3)
    assert told == [(job.id, JobState.DEAD, 2, "ValueError: attempt 2")]  # a job that succeeded is not dead
    assert state_of(queue, job.id) == JobState.DEAD


@BACKENDS
def test_a_job_whose_worker_died_on_its_last_attempt_is_reported_dead(queue: JobQueue) -> None:
    told: list[tuple[int, JobState, int, str | None]] = []
    nexts: list[object] = []
    job = queue.enqueue(JobRequest("stalls", retry=RetryPolicy(max_attempts=1)))
    assert job is not None
    abandon_a_claim(queue, "stalls")  # its worker freezes on the job's only attempt
    handlers = {"stalls": lambda run: None, "next": lambda run: nexts.append(run.job.payload)}
    with Worker(queue, handlers, on_dead={"stalls": follow_up(queue, told)}):
        wait_for(lambda: nexts == [{"after": job.id}], timeout=20)
    [(job_id, state, attempts, error)] = told
    assert (job_id, state, attempts) == (job.id, JobState.DEAD, 1) and error is not None and "heartbeat" in error
    assert state_of(queue, job.id) == JobState.DEAD


@BACKENDS
def test_a_failing_dead_job_handler_is_undone_alone_and_the_job_is_dead(queue: JobQueue) -> None:
    stalled = queue.enqueue(JobRequest("stalls", retry=RetryPolicy(max_attempts=1)))
    assert stalled is not None
    abandon_a_claim(queue, "stalls")  # the only job waiting (a fleet claim takes any kind)
    doomed = queue.enqueue(JobRequest("doomed", retry=RetryPolicy(max_attempts=1)))
    after = queue.enqueue(JobRequest("fine"))
    assert doomed is not None and after is not None

    def broken(job: Job, connection: sa.Connection) -> None:
        queue.enqueue(JobRequest("next", key=f"after:{job.id}"), connection=connection)  # undone with it
        raise RuntimeError("the dead-job handler is broken")

    def fails(run: JobRun) -> None:
        raise ValueError("no")

    handlers = {"doomed": fails, "stalls": lambda run: None, "fine": lambda run: None, "next": lambda run: None}
    with Worker(queue, handlers, on_dead={"doomed": broken, "stalls": broken}):
        wait_for(lambda: state_of(queue, after.id) == JobState.SUCCEEDED)
        wait_for(lambda: state_of(queue, doomed.id) == state_of(queue, stalled.id) == JobState.DEAD, timeout=20)
    assert queue.list_jobs(JobFilter(kind="next")) == []


@BACKENDS
def test_a_job_running_longer_than_its_lease_is_kept_by_heartbeats(queues: Callable[[], JobQueue]) -> None:
    first, second = queues(), queues()
    runs: list[int] = []

    def long(run: JobRun) -> None:
        runs.append(run.job.id)
        run.link_execution(f"exec-{run.job.id}")
        time.sleep(4.0)  # the lease (embedded) is 1.5 s, stalled workers (fleet) are 2 s old

    job = first.enqueue(JobRequest("long"))
    assert job is not None
    with Worker(first, {"long": long}), Worker(second, {"long": long}):
        wait_for(lambda: state_of(first, job.id) == JobState.SUCCEEDED, timeout=30)
    done = first.get(job.id)
    assert runs == [job.id] and done is not None and done.attempts == 1 and done.last_error is None
    assert done.execution_id == f"exec-{job.id}"


@BACKENDS
def test_concurrency_runs_that_many_at_once_and_two_workers_never_run_a_job_twice(
    queues: Callable[[], JobQueue],
) -> None:
    first, second = queues(), queues()
    running: Counter[int] = Counter()
    ran: Counter[int] = Counter()
    peak = [0]
    lock = threading.Lock()

    def busy(run: JobRun) -> None:
        with lock:
            running[run.job.id] += 1
            ran[run.job.id] += 1
            assert running[run.job.id] == 1, "a job runs twice at once"
            peak[0] = max(peak[0], sum(running.values()))
        time.sleep(0.4)
        with lock:
            running[run.job.id] -= 1

    ids = [j.id for j in (first.enqueue(JobRequest("busy", n)) for n in range(12)) if j is not None]
    with Worker(first, {"busy": busy}, concurrency=3), Worker(second, {"busy": busy}, concurrency=3):
        wait_for(lambda: all(state_of(first, i) == JobState.SUCCEEDED for i in ids), timeout=30)
    assert set(ran) == set(ids) and set(ran.values()) == {1}
    assert peak[0] == 6  # both workers, three at a time each


@BACKENDS
def test_jobs_sharing_a_lock_never_run_at_the_same_time(queues: Callable[[], JobQueue]) -> None:
    first, second = queues(), queues()
    active: list[int] = []
    order: list[int] = []
    overlaps: list[tuple[int, int]] = []
    lock = threading.Lock()

    def serial(run: JobRun) -> None:
        with lock:
            overlaps.extend((other, run.job.id) for other in active)
            active.append(run.job.id)
            order.append(run.job.payload)
        time.sleep(0.15)
        with lock:
            active.remove(run.job.id)

    ids = [j.id for j in (first.enqueue(JobRequest("serial", n, lock="acme:Contact")) for n in range(6)) if j]
    with Worker(first, {"serial": serial}, concurrency=3), Worker(second, {"serial": serial}, concurrency=3):
        wait_for(lambda: all(state_of(first, i) == JobState.SUCCEEDED for i in ids), timeout=30)
    assert overlaps == [] and order == list(range(6))


@BACKENDS
def test_finished_jobs_are_purged_after_a_while_and_waiting_ones_never(queue: JobQueue) -> None:
    done = queue.enqueue(JobRequest("purge.me"))
    waiting = queue.enqueue(JobRequest("purge.me", run_at=datetime.now(UTC) + timedelta(hours=1)))
    cancelled = queue.enqueue(JobRequest("purge.me", run_at=datetime.now(UTC) + timedelta(hours=1)))
    assert done is not None and waiting is not None and cancelled is not None
    queue.cancel(cancelled.id)
    with Worker(queue, {"purge.me": lambda run: None}):
        wait_for(lambda: state_of(queue, done.id) == JobState.SUCCEEDED)
    assert queue.purge_finished(timedelta(hours=1)) == 0  # finished just now: kept
    time.sleep(0.1)
    assert queue.purge_finished(timedelta(0)) == 2
    assert [j.id for j in queue.list_jobs(JobFilter())] == [waiting.id]


@BACKENDS
def test_bad_requests_are_refused_with_a_reason(queue: JobQueue) -> None:
    with pytest.raises(Rejected, match="job kind"):
        queue.enqueue(JobRequest("Bad Kind"))
    with pytest.raises(Rejected, match="not JSON"):
        queue.enqueue(JobRequest("ok", payload={1, 2}))
    with pytest.raises(Rejected, match="timezone-aware"):
        queue.enqueue(JobRequest("ok", run_at=datetime(2030, 1, 1)))
    with pytest.raises(Rejected, match="max_attempts"):
        RetryPolicy(max_attempts=0)
    assert queue.list_jobs(JobFilter()) == []


def test_the_fleet_schema_is_applied_once_when_processes_start_at_once(postgres_database: str) -> None:
    opened: list[FleetJobQueue] = []
    errors: list[BaseException] = []

    def start() -> None:
        try:
            opened.append(FleetJobQueue(postgres_database))
        except BaseException as exc:  # pragma: no cover - reported below
            errors.append(exc)

    threads = [threading.Thread(target=start) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    try:
        assert errors == []
        with opened[0].engine.connect() as conn:
            assert (
                conn.execute(
                    sa.text("SELECT count(*) FROM pg_type WHERE typname = 'procrastinate_job_status'")
                ).scalar()
                == 1
            )
    finally:
        for queue in opened:
            queue.close()
