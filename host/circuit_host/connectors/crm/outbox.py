"""The outbox: CRM writes queued inside an execution's transaction, sent only after it commits.

An execution's DML against a CRM becomes rows of ``{prefix}outbox`` written in the
execution's own database transaction (``OutboxWriter``): ``commit()`` makes them visible to
the dispatcher, ``rollback()`` or ``close()`` discards them, so a failed execution sends
nothing. ``OutboxDispatcher`` then sends committed entries in id order per tenant, one at a
time, retrying with exponential backoff and jitter, and marks an entry ``dead`` after the
policy's last attempt.

Delivery is at least once with a narrow window, never "sent twice after success": an entry
is claimed (``sending``, with a lease) before it is sent, each acknowledged chunk's progress
and new ids are committed the moment the CRM answers, and ``sent`` is final. Only a crash
between the CRM accepting a chunk and that commit can make a chunk go out again; see the
connectors' README for what each CRM does with such a resend.
"""

from __future__ import annotations

import json
import random
import threading
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, Literal, Protocol

import structlog
from sqlalchemy import (
    BigInteger,
    Column,
    Connection,
    DateTime,
    Index,
    Integer,
    MetaData,
    RootTransaction,
    String,
    Table,
    Text,
    and_,
    insert,
    select,
    update,
)

from ...migrations import crm_outbox, upgrade
from ...storage_engine import database_url, make_engine
from .api import CrmAuthError, CrmError, CrmUnavailable
from .provisional import is_provisional
from .retry_policy import RetryPolicy

Status = Literal["pending", "sending", "sent", "dead"]
Operation = Literal["create", "update", "upsert", "delete", "undelete"]

_log = structlog.get_logger("circuit.crm.outbox")
_MAX_ERROR = 2000


def _utc(ts: float) -> datetime:
    """Naive UTC, the same on SQLite and PostgreSQL ``timestamp without time zone``."""
    return datetime.fromtimestamp(ts, UTC).replace(tzinfo=None)


class DeliveryFailed(Exception):
    """The CRM rejected an entry for good (bad data, a missing record): mark it dead now."""


@dataclass(frozen=True)
class OutboxEntry:
    """One queued DML statement for one CRM; ``done`` rows were acknowledged by earlier attempts."""

    id: int
    tenant: str
    crm: str
    operation: Operation
    object_name: str
    external_id: str | None
    rows: list[dict[str, Any]]
    provisional: list[str | None]
    """Per row: the provisional id handed to the guest, if this row creates a record."""
    status: Status = "pending"
    done: int = 0
    attempts: int = 0
    next_attempt_at: datetime | None = None
    last_error: str | None = None
    execution_id: str | None = None
    created_at: datetime | None = None
    sent_at: datetime | None = None


class OutboxSender(Protocol):
    """What a CRM connector offers the dispatcher: send one entry, reporting progress as it goes.

    Raise ``CrmUnavailable`` or ``CrmAuthError`` for a failure worth retrying and
    ``DeliveryFailed`` (or any ``CrmError``) for one that is not.
    """

    def deliver(self, delivery: Delivery) -> None: ...


class Outbox:
    """The outbox tables in one database: a SQLite file path or an SQLAlchemy URL (PostgreSQL)."""

    def __init__(self, url: str | Path, *, table_prefix: str = "crm_", busy_timeout_s: float = 30.0) -> None:
        self.url = database_url(url)
        self._prefix = table_prefix
        self.engine = make_engine(self.url, busy_timeout=busy_timeout_s, autocommit=False)
        self.write_engine = self.engine.execution_options(sqlite_begin="IMMEDIATE")
        self.metadata = MetaData()
        self.entries_table = Table(
            f"{table_prefix}outbox",
            self.metadata,
            Column("id", BigInteger().with_variant(Integer, "sqlite"), primary_key=True, autoincrement=True),
            Column("tenant", String(255), nullable=False),
            Column("crm", String(32), nullable=False),
            Column("operation", String(16), nullable=False),
            Column("object_name", String(255), nullable=False),
            Column("external_id", String(255)),
            Column("payload", Text, nullable=False),  # {"rows": [...], "provisional": [...]}
            Column("row_count", Integer, nullable=False),
            Column("done", Integer, nullable=False, default=0),
            Column("status", String(16), nullable=False, default="pending"),
            Column("attempts", Integer, nullable=False, default=0),
            Column("next_attempt_at", DateTime, nullable=False),
            Column("claimed_until", DateTime),
            Column("last_error", Text),
            Column("created_at", DateTime, nullable=False),
            Column("sent_at", DateTime),
            Column("execution_id", String(64)),  # the execution that queued it, once linked
            Index(f"{table_prefix}outbox_queue", "tenant", "status", "id"),
            Index(f"{table_prefix}outbox_execution", "execution_id"),
        )
        self.ids_table = Table(
            f"{table_prefix}id_map",
            self.metadata,
            Column("tenant", String(255), primary_key=True),
            Column("provisional_id", String(18), primary_key=True),
            Column("entry_id", BigInteger, nullable=False),
            Column("real_id", String(255)),
        )
        migrating = make_engine(self.url, busy_timeout=busy_timeout_s)  # migrations run in autocommit mode
        try:
            upgrade(migrating, crm_outbox(table_prefix))
        finally:
            migrating.dispose()

    def writer(self, tenant: str, crm: str) -> OutboxWriter:
        return OutboxWriter(self, tenant, crm)

    def entries(self, tenant: str, status: Status | None = None) -> list[OutboxEntry]:
        """Committed entries of ``tenant`` in queue order (for operators and tests)."""
        t = self.entries_table
        query = select(t).where(t.c.tenant == tenant).order_by(t.c.id)
        if status is not None:
            query = query.where(t.c.status == status)
        with self.engine.connect() as conn:
            return [_entry(row._mapping) for row in conn.execute(query)]

    def listed(
        self, tenants: Sequence[str], status: Status | None = None, limit: int = 100, before_id: int | None = None
    ) -> list[OutboxEntry]:
        """Entries of several tenants (a tenant's environments), newest first, for operators."""
        t = self.entries_table
        query = select(t).where(t.c.tenant.in_(list(tenants))).order_by(t.c.id.desc()).limit(limit)
        if status is not None:
            query = query.where(t.c.status == status)
        if before_id is not None:
            query = query.where(t.c.id < before_id)
        with self.engine.connect() as conn:
            return [_entry(row._mapping) for row in conn.execute(query)]

    def entry(self, entry_id: int) -> OutboxEntry | None:
        t = self.entries_table
        with self.engine.connect() as conn:
            row = conn.execute(select(t).where(t.c.id == entry_id)).first()
        return None if row is None else _entry(row._mapping)

    def of_execution(self, execution_id: str) -> list[OutboxEntry]:
        """What one execution queued, in order."""
        t = self.entries_table
        with self.engine.connect() as conn:
            rows = conn.execute(select(t).where(t.c.execution_id == execution_id).order_by(t.c.id))
            return [_entry(row._mapping) for row in rows]

    def link_execution(self, entry_ids: Sequence[int], execution_id: str) -> None:
        """Name the execution that queued these entries (after it committed them)."""
        if not entry_ids:
            return
        t = self.entries_table
        with self.write_engine.begin() as conn:
            conn.execute(update(t).where(t.c.id.in_(list(entry_ids))).values(execution_id=execution_id))

    def requeue(self, entry_id: int) -> bool:
        """Give one dead entry a fresh set of attempts; False unless it was dead."""
        t = self.entries_table
        with self.write_engine.begin() as conn:
            result = conn.execute(
                update(t)
                .where(t.c.id == entry_id, t.c.status == "dead")
                .values(status="pending", attempts=0, next_attempt_at=_utc(time.time()))
            )
            return int(result.rowcount) == 1

    def real_ids(self, tenant: str, ids: Sequence[str]) -> dict[str, str]:
        """The CRM ids of those provisional ids whose insert has been sent."""
        wanted = sorted({i for i in ids if is_provisional(i)})
        if not wanted:
            return {}
        m = self.ids_table
        query = select(m.c.provisional_id, m.c.real_id).where(
            m.c.tenant == tenant, m.c.provisional_id.in_(wanted), m.c.real_id.is_not(None)
        )
        with self.engine.connect() as conn:
            return {str(p): str(r) for p, r in conn.execute(query)}

    def requeue_dead(self, tenant: str) -> int:
        """Give every dead entry of ``tenant`` a fresh set of attempts (after fixing what killed it)."""
        t = self.entries_table
        with self.write_engine.begin() as conn:
            result = conn.execute(
                update(t)
                .where(t.c.tenant == tenant, t.c.status == "dead")
                .values(status="pending", attempts=0, next_attempt_at=_utc(time.time()))
            )
            return int(result.rowcount)

    def drop(self) -> None:
        """Drop the outbox tables (tests use a unique ``table_prefix`` and drop it afterwards)."""
        self.metadata.drop_all(self.engine)
        with self.engine.begin() as conn:
            conn.exec_driver_sql(f"DROP TABLE IF EXISTS {crm_outbox(self._prefix).version_table}")

    def close(self) -> None:
        self.engine.dispose()


def _entry(row: Mapping[Any, Any]) -> OutboxEntry:
    payload = json.loads(row["payload"])
    return OutboxEntry(
        id=int(row["id"]),
        tenant=row["tenant"],
        crm=row["crm"],
        operation=row["operation"],
        object_name=row["object_name"],
        external_id=row["external_id"],
        rows=payload["rows"],
        provisional=payload["provisional"],
        status=row["status"],
        done=int(row["done"]),
        attempts=int(row["attempts"]),
        next_attempt_at=row["next_attempt_at"],
        last_error=row["last_error"],
        execution_id=row["execution_id"],
        created_at=row["created_at"],
        sent_at=row["sent_at"],
    )


class OutboxWriter:
    """One execution's outbox rows, in a database transaction opened at the first write."""

    def __init__(self, outbox: Outbox, tenant: str, crm: str) -> None:
        self._outbox = outbox
        self.tenant = tenant
        self.crm = crm
        self._conn: Connection | None = None
        self._tx: RootTransaction | None = None
        self._closed = False
        self.entry_ids: list[int] = []
        """Entries this writer added and still holds (a rolled-back savepoint's are forgotten)."""

    def _connection(self) -> Connection:
        if self._closed:
            raise RuntimeError("transaction is closed")
        if self._conn is None:
            self._conn = self._outbox.write_engine.connect()
            self._tx = self._conn.begin()
        return self._conn

    def add(
        self,
        operation: Operation,
        object_name: str,
        rows: Sequence[Mapping[str, Any]],
        provisional: Sequence[str | None],
        external_id: str | None = None,
    ) -> None:
        conn = self._connection()
        payload = json.dumps({"rows": [dict(r) for r in rows], "provisional": list(provisional)}, allow_nan=False)
        now = _utc(time.time())
        result = conn.execute(
            insert(self._outbox.entries_table).values(
                tenant=self.tenant,
                crm=self.crm,
                operation=operation,
                object_name=object_name,
                external_id=external_id,
                payload=payload,
                row_count=len(rows),
                done=0,
                status="pending",
                attempts=0,
                next_attempt_at=now,
                created_at=now,
            )
        )
        assert result.inserted_primary_key is not None
        entry_id = result.inserted_primary_key[0]
        self.entry_ids.append(int(entry_id))
        new_ids = [p for p in provisional if p is not None]
        if new_ids:
            conn.execute(
                insert(self._outbox.ids_table),
                [{"tenant": self.tenant, "provisional_id": p, "entry_id": entry_id} for p in new_ids],
            )

    @contextmanager
    def savepoint(self) -> Iterator[None]:
        nested = self._connection().begin_nested()
        held = len(self.entry_ids)
        try:
            yield
        except BaseException:
            nested.rollback()
            del self.entry_ids[held:]
            raise
        nested.commit()

    def commit(self) -> None:
        self._end(commit=True)

    def rollback(self) -> None:
        self._end(commit=False)

    def _end(self, *, commit: bool) -> None:
        if self._closed:
            return
        self._closed = True
        try:
            if self._tx is not None:
                if commit:
                    self._tx.commit()
                else:
                    self._tx.rollback()
        finally:
            if self._conn is not None:
                self._conn.close()


class Delivery:
    """One attempt at sending one entry: resolves provisional ids and records progress."""

    def __init__(self, outbox: Outbox, entry: OutboxEntry) -> None:
        self._outbox = outbox
        self.entry = entry
        self.done = entry.done

    def pending_rows(self) -> list[tuple[int, dict[str, Any], str | None]]:
        """``(index, row, provisional id)`` of the rows not acknowledged yet."""
        e = self.entry
        return [(i, e.rows[i], e.provisional[i]) for i in range(self.done, len(e.rows))]

    def resolve(self, values: Sequence[Any]) -> list[Any]:
        """Replace provisional ids by the CRM's ids; one whose insert failed fails the entry."""
        wanted = [v for v in values if is_provisional(v)]
        if not wanted:
            return list(values)
        m = self._outbox.ids_table
        with self._outbox.engine.connect() as conn:
            known = {
                str(p): (r, int(e))
                for p, r, e in conn.execute(
                    select(m.c.provisional_id, m.c.real_id, m.c.entry_id).where(
                        m.c.tenant == self.entry.tenant, m.c.provisional_id.in_(sorted(set(wanted)))
                    )
                )
            }
        resolved: list[Any] = []
        for value in values:
            if isinstance(value, str) and value in known:
                real, creator = known[value]
                if real is None:
                    raise DeliveryFailed(f"refers to {value}, which entry {creator} never created")
                resolved.append(real)
            else:
                resolved.append(value)
        return resolved

    def claimed_ids(self, real_ids: Sequence[str]) -> set[str]:
        """Those of ``real_ids`` some provisional id of this tenant already maps to."""
        if not real_ids:
            return set()
        m = self._outbox.ids_table
        query = select(m.c.real_id).where(m.c.tenant == self.entry.tenant, m.c.real_id.in_(list(real_ids)))
        with self._outbox.engine.connect() as conn:
            return {str(r) for (r,) in conn.execute(query)}

    def resolve_row(self, row: Mapping[str, Any]) -> dict[str, Any]:
        keys = list(row)
        return dict(zip(keys, self.resolve([row[k] for k in keys]), strict=True))

    def advance(self, rows: int, created: Mapping[str, str] | None = None) -> None:
        """Commit that ``rows`` more rows were acknowledged, with the ids of records they created."""
        t, m = self._outbox.entries_table, self._outbox.ids_table
        with self._outbox.write_engine.begin() as conn:
            for provisional, real in (created or {}).items():
                mapped = m.c.tenant == self.entry.tenant, m.c.provisional_id == provisional
                conn.execute(update(m).where(*mapped).values(real_id=real))
            self.done += rows
            conn.execute(update(t).where(t.c.id == self.entry.id).values(done=self.done))


@dataclass
class DispatchReport:
    sent: list[int] = field(default_factory=list)
    retrying: list[int] = field(default_factory=list)
    dead: list[int] = field(default_factory=list)


class OutboxDispatcher:
    """Sends committed entries, per tenant in order, through each tenant's connector."""

    def __init__(
        self,
        outbox: Outbox,
        senders: Mapping[str, OutboxSender],
        policy: RetryPolicy | None = None,
        *,
        poll_interval_s: float = 1.0,
        clock: Callable[[], float] = time.time,
        rng: random.Random | None = None,
    ) -> None:
        self.outbox = outbox
        self.senders = dict(senders)
        self.policy = policy or RetryPolicy()
        self.poll_interval_s = poll_interval_s
        self._clock = clock
        self._rng = rng or random.Random()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    # --- one pass ----------------------------------------------------------------------

    def dispatch_once(self) -> DispatchReport:
        """Send every entry that is due, stopping at a tenant's first entry that is not."""
        report = DispatchReport()
        for tenant, sender in self.senders.items():
            while not self._stop.is_set():
                entry = self._claim_next(tenant)
                if entry is None:
                    break
                if not self._deliver(sender, entry, report):
                    break
        return report

    def _claim_next(self, tenant: str) -> OutboxEntry | None:
        t = self.outbox.entries_table
        now = _utc(self._clock())
        with self.outbox.write_engine.begin() as conn:
            row = conn.execute(
                select(t).where(t.c.tenant == tenant, t.c.status.in_(("pending", "sending"))).order_by(t.c.id).limit(1)
            ).first()
            if row is None:
                return None
            head = row._mapping
            if head["status"] == "sending" and head["claimed_until"] is not None and head["claimed_until"] > now:
                return None  # another dispatcher holds it
            if head["status"] == "pending" and head["next_attempt_at"] > now:
                return None  # backing off; later entries wait behind it
            claimed = conn.execute(
                update(t)
                .where(and_(t.c.id == head["id"], t.c.status == head["status"], t.c.attempts == head["attempts"]))
                .values(
                    status="sending",
                    attempts=head["attempts"] + 1,
                    claimed_until=now + timedelta(seconds=self.policy.lease_s),
                )
            )
            if claimed.rowcount != 1:
                return None
        entry = _entry(head)
        return OutboxEntry(**{**entry.__dict__, "status": "sending", "attempts": entry.attempts + 1})

    def _deliver(self, sender: OutboxSender, entry: OutboxEntry, report: DispatchReport) -> bool:
        delivery = Delivery(self.outbox, entry)
        t = self.outbox.entries_table
        try:
            sender.deliver(delivery)
        except Exception as exc:
            retryable = isinstance(exc, CrmUnavailable | CrmAuthError) or not isinstance(exc, DeliveryFailed | CrmError)
            message = f"{type(exc).__name__}: {exc}"[:_MAX_ERROR]
            now = self._clock()
            if retryable and entry.attempts < self.policy.max_attempts:
                delay = self._delay(entry.attempts, getattr(exc, "retry_after_s", None))
                values: dict[str, Any] = {"status": "pending", "next_attempt_at": _utc(now + delay)}
                report.retrying.append(entry.id)
                _log.warning("outbox send failed; retrying", entry=entry.id, tenant=entry.tenant, delay_s=delay)
            else:
                values = {"status": "dead"}
                report.dead.append(entry.id)
                _log.error("outbox entry dead", entry=entry.id, tenant=entry.tenant, attempts=entry.attempts)
            with self.outbox.write_engine.begin() as conn:
                values.update(last_error=message, claimed_until=None)
                conn.execute(update(t).where(t.c.id == entry.id).values(**values))
            return bool(values["status"] == "dead")  # a dead entry no longer blocks its tenant
        with self.outbox.write_engine.begin() as conn:
            conn.execute(
                update(t)
                .where(t.c.id == entry.id)
                .values(status="sent", sent_at=_utc(self._clock()), claimed_until=None, last_error=None)
            )
        report.sent.append(entry.id)
        return True

    def _delay(self, attempts: int, retry_after_s: float | None) -> float:
        p = self.policy
        delay: float = min(p.max_delay_s, p.base_delay_s * 2.0 ** (attempts - 1))
        delay *= 1 - p.jitter * self._rng.random()
        if retry_after_s is not None:
            delay = max(delay, min(retry_after_s, p.max_retry_after_s))
        return delay

    # --- in the background ---------------------------------------------------------------

    def start(self) -> None:
        if self._thread is not None:
            raise RuntimeError("dispatcher already started")
        self._stop.clear()
        self._thread = threading.Thread(target=self._run, name="crm-outbox-dispatcher", daemon=True)
        self._thread.start()

    def _run(self) -> None:
        while not self._stop.is_set():
            try:
                report = self.dispatch_once()
            except Exception:  # a database hiccup must not kill the loop
                _log.exception("outbox dispatch pass failed")
                report = DispatchReport()
            if not report.sent:
                self._stop.wait(self.poll_interval_s)

    def stop(self, timeout_s: float = 30.0) -> None:
        """Stop after the entry being sent, if any; idempotent."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout_s)
            self._thread = None

    def __enter__(self) -> OutboxDispatcher:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()
