"""The live tail: the caller's new executions and their debug-log lines as server-sent events.

The stream reads the stored executions (the same rows ``GET /v1/executions`` lists), so it shows
what every server process on the platform database ran, not only this one. Every ``POLL_SECONDS``
it asks for the executions that started in the last ``LOOKBACK`` and sends the ones it has not
sent yet, oldest first: ``event: execution`` (the summary, ``id:`` its id) followed by one
``event: log`` per debug-log line (``logs=false`` leaves them out). A comment line every
``KEEPALIVE_SECONDS`` keeps proxies from closing an idle stream; a stream ends after
``MAX_STREAM_SECONDS``, or at a database error, and a client reconnects with ``Last-Event-ID`` to go
on where it was.
Streams are bounded per server and per tenant (429 beyond), and their reads run on a limiter of
their own, never the thread pool that runs executions.
"""

from __future__ import annotations

import json
import threading
import time
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

import anyio
import structlog
from fastapi import APIRouter, Depends, Header, Request
from fastapi.responses import StreamingResponse

from ...platform import ExecutionEntry
from ..auth import Caller, require, state_of
from ..problems import Problem
from ..state import ServerState
from .models import Environment

log = structlog.get_logger("circuit.server")
POLL_SECONDS = 0.5
LOOKBACK = timedelta(minutes=10)  # an execution saved this long after it started is still seen
PAGE = 200  # newest executions read per poll; more new ones than this in one poll are reported as a gap
KEEPALIVE_SECONDS = 15.0
MAX_STREAM_SECONDS = 3600.0
MAX_STREAMS = 64
MAX_STREAMS_PER_TENANT = 8
MAX_LOG_LINES = 500  # per execution; the rest are counted in the last event
MAX_LINE_CHARS = 2000


class StreamSlots:
    """How many streams are open, in all and per tenant; a thread-safe counter with two ceilings."""

    def __init__(self, total: int = MAX_STREAMS, per_tenant: int = MAX_STREAMS_PER_TENANT) -> None:
        self.total = total
        self.per_tenant = per_tenant
        self._open: dict[str, int] = {}
        self._lock = threading.Lock()

    def take(self, tenant_id: str) -> bool:
        with self._lock:
            if sum(self._open.values()) >= self.total or self._open.get(tenant_id, 0) >= self.per_tenant:
                return False
            self._open[tenant_id] = self._open.get(tenant_id, 0) + 1
            return True

    def give_back(self, tenant_id: str) -> None:
        with self._lock:
            left = self._open.get(tenant_id, 1) - 1
            if left:
                self._open[tenant_id] = left
            else:
                self._open.pop(tenant_id, None)


def sse(event: str, data: Any, event_id: str | None = None) -> bytes:
    """One server-sent event; ``data`` as one line of JSON."""
    head = f"id: {event_id}\n" if event_id else ""
    return f"{head}event: {event}\ndata: {json.dumps(data, default=str, separators=(',', ':'))}\n\n".encode()


def summary(entry: ExecutionEntry) -> dict[str, Any]:
    return {
        "id": entry.id,
        "env": entry.env,
        "circuit": entry.circuit,
        "version": entry.version,
        "trigger": entry.trigger,
        "status": entry.status,
        "error": entry.error,
        "duration_ms": entry.duration_ms,
        "started_at": entry.started_at.isoformat(),
        "trace_id": entry.trace_id,
    }


def log_events(entry: ExecutionEntry) -> list[bytes]:
    lines = entry.debug_log.splitlines()
    events = [sse("log", {"execution_id": entry.id, "line": line[:MAX_LINE_CHARS]}) for line in lines[:MAX_LOG_LINES]]
    if len(lines) > MAX_LOG_LINES:
        events.append(sse("log", {"execution_id": entry.id, "line": f"… {len(lines) - MAX_LOG_LINES} more lines"}))
    return events


@dataclass(frozen=True)
class TailFilter:
    env: str | None = None
    circuit: str | None = None
    status: str | None = None


class ExecutionTail:
    """What one stream has sent: the ids of executions started within ``LOOKBACK``."""

    def __init__(self, state: ServerState, tenant_id: str, filters: TailFilter, logs: bool) -> None:
        self.state = state
        self.tenant_id = tenant_id
        self.filters = filters
        self.logs = logs
        self.sent: dict[str, Any] = {}  # id -> started_at

    def _recent(self) -> list[ExecutionEntry]:
        since = self.state.platform.database.now() - LOOKBACK
        f = self.filters
        return self.state.platform.executions.list_executions(
            self.tenant_id, env=f.env, circuit=f.circuit, status=f.status, since=since, limit=PAGE
        )

    def start(self, last_event_id: str | None) -> None:
        """Count what already ran as sent: all of it, or what ran up to ``last_event_id`` (a reconnect)."""
        recent = self._recent()
        if last_event_id:
            ids = [e.id for e in recent]
            if last_event_id in ids:
                recent = recent[ids.index(last_event_id) :]  # newest first: it and everything older
        self.sent = {e.id: e.started_at for e in recent}

    def poll(self) -> list[bytes]:
        recent = self._recent()
        new = [e for e in reversed(recent) if e.id not in self.sent]
        events: list[bytes] = []
        if len(recent) == PAGE and all(e.id not in self.sent for e in recent):
            events.append(sse("gap", {"detail": f"more than {PAGE} executions since the last poll; some not shown"}))
        for entry in new:
            self.sent[entry.id] = entry.started_at
            events.append(sse("execution", summary(entry), entry.id))
            if self.logs:
                full = self.state.platform.executions.get_execution(self.tenant_id, entry.id)
                if full is not None:
                    events.extend(log_events(full))
        oldest = self.state.platform.database.now() - LOOKBACK
        self.sent = {i: started for i, started in self.sent.items() if started >= oldest}
        return events


def stream_router(slots: StreamSlots | None = None, clock: Callable[[], float] = time.monotonic) -> APIRouter:
    """The stream's router with its own bound on open streams (one per app)."""
    slots = slots or StreamSlots()
    reads = anyio.CapacityLimiter(4)  # the streams' database reads, off the executions' pool
    router = APIRouter(prefix="/v1/executions", tags=["executions"])

    @router.get(
        "/stream",
        summary="New executions and their debug-log lines, as server-sent events",
        response_class=StreamingResponse,
        responses={200: {"content": {"text/event-stream": {}}}, 429: {"description": "too many open streams"}},
    )
    def stream(
        request: Request,
        env: Environment | None = None,
        circuit: str | None = None,
        status: str | None = None,
        logs: bool = True,
        last_event_id: str | None = Header(None, alias="Last-Event-ID", max_length=64),
        caller: Caller = Depends(require("read")),
        state: ServerState = Depends(state_of),
    ) -> StreamingResponse:
        tail = ExecutionTail(state, caller.tenant_id, TailFilter(env, circuit, status), logs)
        if not slots.take(caller.tenant_id):
            raise Problem(
                429, "Too many streams", f"at most {slots.per_tenant} per tenant and {slots.total} per server are open"
            )
        try:
            tail.start(last_event_id)
        except BaseException:
            slots.give_back(caller.tenant_id)
            raise

        async def events() -> AsyncIterator[bytes]:
            try:
                yield b"retry: 1000\n\n"
                opened = last_write = clock()
                while clock() - opened < MAX_STREAM_SECONDS:
                    await anyio.sleep(POLL_SECONDS)
                    if await request.is_disconnected():
                        return
                    try:
                        batch = await anyio.to_thread.run_sync(tail.poll, limiter=reads)
                    except Exception as exc:  # the database went away (or the server is closing): end here
                        log.warning("execution stream ended", tenant=caller.tenant_id, error=type(exc).__name__)
                        return
                    for event in batch:
                        yield event
                    if batch:
                        last_write = clock()
                    elif clock() - last_write >= KEEPALIVE_SECONDS:
                        yield b": keepalive\n\n"
                        last_write = clock()
            finally:
                slots.give_back(caller.tenant_id)

        headers = {"Cache-Control": "no-cache", "X-Accel-Buffering": "no"}
        return StreamingResponse(events(), media_type="text/event-stream", headers=headers)

    return router
