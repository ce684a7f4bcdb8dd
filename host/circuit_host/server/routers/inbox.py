"""The webhook inbox of the caller's tenant: stored deliveries, what became of them, the dead letters."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated

from fastapi import APIRouter, Depends, Path, Query
from pydantic import BaseModel, Field

from ...platform.inbox_rows import InboxRow, InboxState
from ..auth import Caller, require, state_of
from ..problems import Problem
from ..state import ServerState
from .models import Environment

router = APIRouter(prefix="/v1/inbox", tags=["webhooks"])
EntryId = Annotated[int, Path(ge=1, le=2**63 - 1, description="an inbox entry's id")]  # a database integer


class InboxEntryView(BaseModel):
    id: int
    env: str
    source: str
    dedupe_key: str = Field(description="the sender's delivery id, or sha256: of the signed body")
    object: str
    action: str
    records: int
    state: InboxState = Field(description="pending (waiting or between retries), applied, or dead (dead letter)")
    attempts: int
    next_attempt_at: datetime
    last_error: str | None
    execution_id: str | None = Field(description="the execution that applied it (or the latest failed one)")
    received_at: datetime
    finished_at: datetime | None


class InboxPage(BaseModel):
    entries: list[InboxEntryView]
    next_before: int | None = Field(None, description="pass as `before` to get the next (older) page")


def view(row: InboxRow) -> InboxEntryView:
    return InboxEntryView(
        id=row.id,
        env=row.env,
        source=row.source,
        dedupe_key=row.dedupe_key,
        object=row.object,
        action=row.action,
        records=row.records,
        state=row.state,
        attempts=row.attempts,
        next_attempt_at=row.next_attempt_at,
        last_error=row.last_error,
        execution_id=row.execution_id,
        received_at=row.received_at,
        finished_at=row.finished_at,
    )


@router.get("", response_model=InboxPage, summary="List stored webhooks, newest first")
def list_inbox(
    state: InboxState | None = None,
    env: Environment | None = None,
    before: Annotated[int | None, Query(ge=1, le=2**63 - 1, description="ids below this (the next page)")] = None,
    limit: Annotated[int, Query(ge=1, le=500)] = 50,
    caller: Caller = Depends(require("read")),
    server: ServerState = Depends(state_of),
) -> InboxPage:
    rows = server.inbox.rows.list_rows(caller.tenant_id, state=state, env=env, before_id=before, limit=limit)
    return InboxPage(entries=[view(r) for r in rows], next_before=rows[-1].id if len(rows) == limit else None)


@router.get("/{entry_id}", response_model=InboxEntryView, summary="One stored webhook change")
def get_entry(
    entry_id: EntryId, caller: Caller = Depends(require("read")), server: ServerState = Depends(state_of)
) -> InboxEntryView:
    row = server.inbox.rows.get(caller.tenant_id, entry_id)
    if row is None:
        raise Problem(404, "Not found", f"no inbox entry {entry_id}")
    return view(row)


@router.post("/{entry_id}/retry", response_model=InboxEntryView, summary="Apply a dead-lettered webhook again")
def retry_entry(
    entry_id: EntryId, caller: Caller = Depends(require("deploy")), server: ServerState = Depends(state_of)
) -> InboxEntryView:
    return view(server.inbox.retry_row(caller.tenant_id, entry_id))
