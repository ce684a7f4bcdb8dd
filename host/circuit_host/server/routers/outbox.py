"""The CRM outbox as operators see it: queued writes by state, and a retry for dead-lettered ones."""

from __future__ import annotations

from datetime import UTC
from typing import Annotated, Literal

from fastapi import APIRouter, Depends, Path, Query
from starlette.concurrency import run_in_threadpool

from ...connectors.crm import OutboxEntry
from ..auth import Caller, require, state_of
from ..crm_outbox import env_of
from ..problems import Problem
from ..state import ServerState
from .models import OutboxEntryView

router = APIRouter(prefix="/v1/outbox", tags=["outbox"])
EntryId = Annotated[int, Path(ge=1, le=2**63 - 1, description="an outbox entry's id")]  # a database integer


def entry_view(entry: OutboxEntry) -> OutboxEntryView:
    def utc(moment: object) -> object:
        return moment.replace(tzinfo=UTC) if moment is not None and hasattr(moment, "replace") else moment

    return OutboxEntryView.model_validate(
        {
            "id": entry.id,
            "env": env_of(entry),
            "crm": entry.crm,
            "operation": entry.operation,
            "object": entry.object_name,
            "rows": len(entry.rows),
            "done": entry.done,
            "state": entry.status,
            "attempts": entry.attempts,
            "next_attempt_at": utc(entry.next_attempt_at) if entry.status == "pending" else None,
            "last_error": entry.last_error,
            "execution_id": entry.execution_id,
            "created_at": utc(entry.created_at),
            "sent_at": utc(entry.sent_at),
        }
    )


@router.get("", response_model=list[OutboxEntryView], summary="CRM writes, newest first")
async def list_outbox(
    state_filter: Annotated[Literal["pending", "sending", "sent", "dead"] | None, Query(alias="state")] = None,
    limit: Annotated[int, Query(ge=1, le=1000)] = 100,
    before: Annotated[int | None, Query(ge=1, le=2**63 - 1, description="ids below this (the next page)")] = None,
    caller: Caller = Depends(require("read")),
    state: ServerState = Depends(state_of),
) -> list[OutboxEntryView]:
    entries = await run_in_threadpool(state.crm_outbox.entries, caller.tenant_id, state_filter, limit, before)
    return [entry_view(e) for e in entries]


@router.post("/{entry_id}/retry", response_model=OutboxEntryView, summary="Send a dead-lettered write again")
async def retry_entry(
    entry_id: EntryId, caller: Caller = Depends(require("admin")), state: ServerState = Depends(state_of)
) -> OutboxEntryView:
    def retry() -> OutboxEntry:
        entry = state.crm_outbox.entry(caller.tenant_id, entry_id)
        if entry is None:
            raise Problem(404, "Not found", f"no outbox entry {entry_id}")
        if not state.crm_outbox.outbox.requeue(entry_id):
            raise Problem(409, "Conflict", f"outbox entry {entry_id} is {entry.status}; only dead entries are retried")
        with state.platform.database.write() as conn:  # who retried what, in the tenant's audit trail
            state.platform.audit.append(
                conn, caller.tenant_id, caller.actor, "outbox_retry", env_of(entry), "", None, str(entry_id)
            )
        requeued = state.crm_outbox.entry(caller.tenant_id, entry_id)
        assert requeued is not None
        return requeued

    return entry_view(await run_in_threadpool(retry))
