"""The webhook inbox: a verified delivery is stored with the job that applies it, in one transaction,
and answered 202; workers apply the stored changes in batches, exactly once per row.

Intake (the request) does nothing but store: inbox rows (``platform/inbox_rows.py``) and, per
(tenant, env, object, action), an apply job holding that key as its ``queueing_lock`` (one job waits
per key, run ``coalesce_window_ms`` later to gather a batch) and its ``lock`` (batches of a key are
applied serially). A repeated delivery violates the rows' unique dedupe key: nothing is stored.
So does one whose delivery id a version before the inbox claimed (``cs_webhook_ids``, still in its
replay window; ``WebhookIntake.delivered_before``); the daily purge forgets those claims as they expire.

The apply job takes the key's due rows, up to 200 records of one source, and runs them as one
trigger execution through the server's one path (``ServerState.apply_webhook_changes``). The
records transaction records a receipt per row (``CircuitDB.begin(receipts=...)``), so a worker
that dies between the records commit and marking the rows applied finds the receipts on its next
attempt and applies nothing twice. A failed batch of several rows is retried row by row, so one bad
delivery fails alone; a failed row is retried with backoff (``inbox_backoff_s``, doubling), and is
dead-lettered after ``inbox_max_attempts``; ``retry`` gives a dead row another round.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Sequence
from dataclasses import replace
from datetime import UTC, datetime, timedelta

import structlog

from ..circuitdb import CircuitDB
from ..connectors.records import RecordsTransaction
from ..errors import CircuitError
from ..execution.executions import ExecutionRecord
from ..jobs import JobCancelled, JobQueue, JobRequest, JobRun, PeriodicSchedule, RetryPolicy
from ..platform import Platform
from ..platform.inbox_rows import Duplicate, InboxEntry, InboxRow, InboxRows, InboxState
from ..triggers import TRIGGER_CHUNK_SIZE
from ..webhooks import Change
from .server_jobs import ServerJobs

log = structlog.get_logger("circuit.webhooks")

APPLY_KIND = "webhook.apply"
PURGE_KIND = "webhook.inbox-purge"
PURGE = PeriodicSchedule(PURGE_KIND, "41 3 * * *", PURGE_KIND)
"""Daily: applied rows (and so their dedupe keys) are kept a week, dead ones 30 days."""
APPLIED_KEPT = timedelta(days=7)
DEAD_KEPT = timedelta(days=30)
MAX_BATCHES_PER_JOB = 50  # then a follow-up job, so one busy key cannot hold a worker for ever
FOLLOW_UP_WAIT = timedelta(seconds=5)  # longest a key's new deliveries wait behind an entry's backoff

ApplyChanges = Callable[[str, str, str, list[Change], Sequence[str]], list[ExecutionRecord]]
"""``(tenant, env, source, changes, receipts) -> executions``: the server's path of a record change."""


def receipt(row_id: int) -> str:
    return f"inbox:{row_id}"


def delivery_ids(changes: Sequence[Change], body: bytes) -> list[str]:
    """Each change's delivery id: the sender's, or the signed body's hash when the source sends none
    (a verified body cannot be sent unchanged as a new delivery)."""
    body_key = "sha256:" + hashlib.sha256(body).hexdigest()
    return [change.webhook_id or body_key for change in changes]


def entries_of(changes: Sequence[Change], body: bytes) -> list[InboxEntry]:
    """One entry per change, changes over 200 records cut into parts. The dedupe key is the change's
    delivery id (hashed past 200 characters); ``part`` numbers the entries sharing a key."""
    parts: dict[str, int] = {}
    found = []
    for change, key in zip(changes, delivery_ids(changes, body), strict=True):
        if len(key) > 200:
            key = "sha256:" + hashlib.sha256(key.encode()).hexdigest()
        for start in range(0, max(len(change.records), 1), TRIGGER_CHUNK_SIZE):
            part = parts.get(key, 0)
            parts[key] = part + 1
            chunk = replace(change, webhook_id=key, records=change.records[start : start + TRIGGER_CHUNK_SIZE])
            found.append(InboxEntry(key, part, chunk))
    return found


def batch_lock(tenant_id: str, env: str, object_name: str, action: str) -> str:
    return f"inbox:{tenant_id}:{env}:{object_name}:{action}"


class WebhookInbox:
    """Intake's store, and the apply job's handler (registered with the server's jobs)."""

    def __init__(
        self,
        platform: Platform,
        jobs: ServerJobs,
        apply: ApplyChanges,
        receipts: Callable[[str, str, list[str]], set[str]],
        retry: RetryPolicy,
    ) -> None:
        self.platform = platform
        self.queue: JobQueue = jobs.queue
        self.rows = InboxRows(platform.database)
        self.apply = apply
        self.receipts = receipts  # (tenant, env, keys) -> those the environment's records hold
        self.retry = retry
        jobs.register(APPLY_KIND, self.run_apply_job)
        jobs.register(PURGE_KIND, self.purge, PURGE)

    # -- intake -----------------------------------------------------------------------------

    def accept(
        self, tenant_id: str, env: str, source: str, changes: Sequence[Change], body: bytes, window_ms: int
    ) -> list[int] | None:
        """Store a verified delivery and its apply jobs in one transaction: the row ids, or None
        when the delivery was stored before (a duplicate; nothing is stored)."""
        entries = entries_of(changes, body)
        run_at = datetime.now(UTC) + timedelta(milliseconds=window_ms)
        keys = dict.fromkeys((e.change.object, e.change.action) for e in entries)
        try:
            with self.platform.database.write() as conn:
                if self.platform.webhooks.delivered_before(conn, tenant_id, source, delivery_ids(changes, body)):
                    raise Duplicate("claimed before the inbox existed")  # cs_webhook_ids, from an older version
                ids = self.rows.insert(conn, tenant_id, env, source, entries)
                for object_name, action in keys:
                    self.queue.enqueue(
                        self._apply_request(tenant_id, env, object_name, action, run_at), connection=conn
                    )
        except Duplicate:
            return None
        return ids

    def _apply_request(self, tenant_id: str, env: str, object_name: str, action: str, run_at: datetime) -> JobRequest:
        lock = batch_lock(tenant_id, env, object_name, action)
        return JobRequest(
            APPLY_KIND,
            {"object": object_name, "action": action},
            tenant_id=tenant_id,
            env=env,
            run_at=run_at,
            queueing_lock=lock,
            lock=lock,
        )

    # -- the dead letter ----------------------------------------------------------------------

    def retry_row(self, tenant_id: str, row_id: int) -> InboxRow:
        """A dead row pending again, with a job to apply it, in one transaction."""
        now = datetime.now(UTC)
        with self.platform.database.write() as conn:
            row = self.rows.retry(conn, tenant_id, row_id)
            self.queue.enqueue(self._apply_request(tenant_id, row.env, row.object, row.action, now), connection=conn)
        return row

    def recover(self) -> int:
        """Enqueue an apply job for every key with pending rows (one that waits already is kept):
        rows whose job died or was purged are not left behind. Run at start; how many keys."""
        now = datetime.now(UTC)
        keys = self.rows.pending_keys()
        for tenant_id, env, object_name, action in keys:
            self.queue.enqueue(self._apply_request(tenant_id, env, object_name, action, now))
        return len(keys)

    # -- the apply job ----------------------------------------------------------------------

    def run_apply_job(self, run: JobRun) -> None:
        job = run.job
        tenant_id, env = job.tenant_id, str(job.env)
        object_name, action = str(job.payload["object"]), str(job.payload["action"])
        for _ in range(MAX_BATCHES_PER_JOB):
            batch = self.rows.next_batch(tenant_id, env, object_name, action, TRIGGER_CHUNK_SIZE, datetime.now(UTC))
            if not batch:
                break
            self.apply_batch(tenant_id, env, batch)
            if run.cancel_requested():
                raise JobCancelled(f"job {job.id} cancelled; the rows left are applied by the next job")
        due = self.rows.next_due(tenant_id, env, object_name, action)
        if due is not None:  # retries waiting their backoff, or more than this job took
            # The waiting job holds the key's queueing lock, so new deliveries wait for it: not past FOLLOW_UP_WAIT.
            run_at = min(due, datetime.now(UTC) + FOLLOW_UP_WAIT)
            self.queue.enqueue(self._apply_request(tenant_id, env, object_name, action, run_at))

    def apply_batch(self, tenant_id: str, env: str, batch: list[InboxRow]) -> None:
        """One execution for the batch; if it fails and holds several rows, each row alone."""
        done = self.receipts(tenant_id, env, [receipt(r.id) for r in batch])
        if done:  # applied by an attempt that died before saying so
            self.rows.mark_applied([r.id for r in batch if receipt(r.id) in done], None)
            batch = [r for r in batch if receipt(r.id) not in done]
        if not batch:
            return
        outcome = self._apply(tenant_id, env, batch)
        if outcome is None or len(batch) == 1:
            self._settle(batch, outcome)
            return
        for row in batch:
            self._settle([row], self._apply(tenant_id, env, [row]))

    def _apply(self, tenant_id: str, env: str, rows: list[InboxRow]) -> tuple[str, str | None] | None:
        """Run the rows as one change: None when it committed (or had nothing to do), else
        ``(error, execution id)``."""
        first = rows[0].change
        merged = replace(first, records=[r for row in rows for r in row.change.records], webhook_id=None)
        try:
            executions = self.apply(tenant_id, env, first.source, [merged], [receipt(r.id) for r in rows])
        except CircuitError as exc:  # the change cannot apply here (e.g. another CRM's change)
            return f"{exc.kind}: {exc}", None
        failed = [e for e in executions if e.status != "ok"]
        if not failed:
            self.rows.mark_applied([r.id for r in rows], executions[-1].id if executions else None)
            return None
        error = failed[0].error or {}
        return f"{failed[0].status}: {error.get('kind', '')}: {error.get('message', '')}", failed[0].id

    def _settle(self, rows: list[InboxRow], outcome: tuple[str, str | None] | None) -> None:
        if outcome is None:
            return
        error, execution_id = outcome
        for row in rows:
            delay = self.retry.delay_after(row.attempts + 1)
            state = self.rows.mark_failed(row.id, error, execution_id, self.retry.max_attempts, delay)
            log.warning(
                "webhook apply failed", inbox_id=row.id, attempt=row.attempts + 1, dead=state == InboxState.DEAD
            )

    def purge(self, run: JobRun) -> None:
        now = datetime.now(UTC)
        purged = self.rows.purge(now - APPLIED_KEPT, now - DEAD_KEPT)
        claims = self.platform.webhooks.purge_expired_webhook_ids()
        log.info("webhook inbox purged", count=purged, older_claims=claims, job_id=run.job.id)


class ReceiptedRecords:
    """A records store whose transactions record receipts of the inbox rows they apply (a
    ``RecordsConnector`` over the environment's CircuitDB, which the server keeps open)."""

    def __init__(self, store: CircuitDB, receipts: Sequence[str]) -> None:
        self.store = store
        self.keys = list(receipts)

    def begin(self) -> RecordsTransaction:
        return self.store.begin(receipts=self.keys)

    def close(self) -> None:
        """The store is the server's: nothing to release."""
