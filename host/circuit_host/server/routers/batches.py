"""Batch circuits of the caller's tenant: start one, follow its progress, cancel it."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Query
from pydantic import BaseModel, Field

from ...platform.batch_rows import BatchRow, BatchState
from ..auth import Caller, require, state_of
from ..batch_circuits import DEFAULT_SCOPE, MAX_SCOPE
from ..problems import Problem
from ..state import ServerState
from .models import Environment

router = APIRouter(prefix="/v1/batches", tags=["batches"])


class BatchStart(BaseModel):
    circuit: str = Field(min_length=1, max_length=64)
    env: Environment
    scope: int = Field(DEFAULT_SCOPE, ge=1, le=MAX_SCOPE, description="records per chunk (one execution each)")
    query: str | None = Field(
        None, max_length=20_000, description="the SOQL to page by Id; without it, the circuit's batch-start returns it"
    )
    payload: Any = Field(None, description="given to every phase as the event's payload")


class BatchView(BaseModel):
    id: str
    circuit: str
    env: str
    version: str
    query: str | None
    scope: int
    total: int | None = Field(description="the query's count when the batch started")
    state: BatchState
    error: str | None
    chunks_ok: int
    chunks_failed: int
    records_processed: int = Field(description="records in chunks that ended ok")
    records_failed: int
    last_id: str | None = Field(description="the last record of the newest chunk")
    created_at: datetime
    finished_at: datetime | None


class BatchPage(BaseModel):
    batches: list[BatchView]


def view(row: BatchRow) -> BatchView:
    s = row.summary
    return BatchView(
        id=row.id,
        circuit=row.circuit,
        env=row.env,
        version=row.version,
        query=row.query,
        scope=row.scope,
        total=row.total,
        state=row.state,
        error=row.error,
        chunks_ok=s.chunks_ok,
        chunks_failed=s.chunks_failed,
        records_processed=s.records_processed,
        records_failed=s.records_failed,
        last_id=s.last_id,
        created_at=row.created_at,
        finished_at=row.finished_at,
    )


@router.post("", response_model=BatchView, status_code=202, summary="Start a batch of an active circuit")
def start_batch(
    body: BatchStart, caller: Caller = Depends(require("deploy")), server: ServerState = Depends(state_of)
) -> BatchView:
    row = server.batches.start(caller.tenant_id, body.env, body.circuit, body.scope, body.query, body.payload)
    return view(row)


@router.get("", response_model=BatchPage, summary="List batches, newest first")
def list_batches(
    limit: Annotated[int, Query(ge=1, le=500)] = 50,
    caller: Caller = Depends(require("read")),
    server: ServerState = Depends(state_of),
) -> BatchPage:
    return BatchPage(batches=[view(r) for r in server.batches.rows.list_batches(caller.tenant_id, limit)])


@router.get("/{batch_id}", response_model=BatchView, summary="One batch and its progress")
def get_batch(
    batch_id: str, caller: Caller = Depends(require("read")), server: ServerState = Depends(state_of)
) -> BatchView:
    row = server.batches.rows.get(caller.tenant_id, batch_id)
    if row is None:
        raise Problem(404, "Not found", f"no batch {batch_id}")
    return view(row)


@router.post("/{batch_id}/cancel", response_model=BatchView, summary="Start no further chunk of a batch")
def cancel_batch(
    batch_id: str, caller: Caller = Depends(require("deploy")), server: ServerState = Depends(state_of)
) -> BatchView:
    return view(server.batches.cancel(caller.tenant_id, batch_id))
