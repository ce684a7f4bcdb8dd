"""Stored executions with their debug logs."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated

from fastapi import APIRouter, Depends, Query

from ...platform import ExecutionEntry
from ..auth import Caller, require, state_of
from ..problems import Problem
from ..state import ServerState
from .models import Environment, ExecutionDetail, ExecutionPage, TimelineStepView
from .outbox import entry_view

router = APIRouter(prefix="/v1/executions", tags=["executions"])


def detail(e: ExecutionEntry, with_log: bool) -> ExecutionDetail:
    return ExecutionDetail(
        id=e.id,
        env=e.env,
        circuit=e.circuit,
        version=e.version,
        trigger=e.trigger,
        status=e.status,
        error=e.error,
        usage=e.usage,
        duration_ms=e.duration_ms,
        started_at=e.started_at,
        trace_id=e.trace_id,
        debug_log=e.debug_log if with_log else None,
        timeline=[TimelineStepView.model_validate(step) for step in e.timeline] if with_log else None,
    )


@router.get("", response_model=ExecutionPage, summary="List executions, newest first")
def list_executions(
    env: Environment | None = None,
    circuit: str | None = None,
    status: str | None = None,
    since: datetime | None = None,
    until: datetime | None = None,
    before: str | None = None,
    limit: Annotated[int, Query(ge=1, le=500)] = 50,
    caller: Caller = Depends(require("read")),
    state: ServerState = Depends(state_of),
) -> ExecutionPage:
    entries = state.platform.executions.list_executions(
        caller.tenant_id,
        env=env,
        circuit=circuit,
        status=status,
        since=_as_utc(since),
        until=_as_utc(until),
        limit=limit,
        before_id=before,
    )
    page = [detail(e, with_log=False) for e in entries]
    return ExecutionPage(executions=page, next_before=page[-1].id if len(page) == limit else None)


@router.get("/{execution_id}", response_model=ExecutionDetail, summary="One execution with its debug log")
def get_execution(
    execution_id: str, caller: Caller = Depends(require("read")), state: ServerState = Depends(state_of)
) -> ExecutionDetail:
    entry = state.platform.executions.get_execution(caller.tenant_id, execution_id)
    if entry is None:
        raise Problem(404, "Not found", f"no execution {execution_id}")
    writes = [entry_view(e) for e in state.crm_outbox.of_execution(execution_id)]
    return detail(entry, with_log=True).model_copy(update={"crm_writes": writes})


def _as_utc(moment: datetime | None) -> datetime | None:
    """A time filter without an offset is read as UTC, the time every execution is stored in."""
    return moment.replace(tzinfo=UTC) if moment is not None and moment.tzinfo is None else moment
