"""The tenant's own record API: writes fire triggers like circuit DML does; reads are SOQL."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Path, Query

from ...connectors.records import DmlOp
from ..auth import Caller, require, state_of
from ..state import ServerState
from .models import Environment, ExecutionSummary, QueryResultModel, RecordWrite, WriteResult

router = APIRouter(prefix="/v1", tags=["records"])
OBJECT_NAME = r"^[A-Za-z][A-Za-z0-9_]{0,79}$"


@router.post("/records/{object_name}", response_model=WriteResult, summary="Write records, firing their triggers")
def write_records(
    object_name: Annotated[str, Path(pattern=OBJECT_NAME)],
    body: RecordWrite,
    env: Environment = "production",
    caller: Caller = Depends(require("deploy")),
    state: ServerState = Depends(state_of),
) -> WriteResult:
    record = state.apply_change(
        caller.tenant_id,
        env,
        DmlOp[body.op.upper()],
        object_name,
        body.records,
        f"api:{object_name}.{body.op}",
        body.external_id,
    )
    summary = ExecutionSummary(id=record.id, status=record.status, error=record.error, duration_ms=record.duration_ms)
    output = record.output or {}
    return WriteResult(execution=summary, ids=output.get("ids", []), created=output.get("created", []))


@router.get("/query", response_model=QueryResultModel, summary="Run a SOQL query")
def query(
    soql: Annotated[str, Query(min_length=1, max_length=100_000)],
    env: Environment = "production",
    limit: Annotated[int, Query(ge=1, le=50_000)] = 2000,
    caller: Caller = Depends(require("read")),
    state: ServerState = Depends(state_of),
) -> QueryResultModel:
    transaction = state.store(caller.tenant_id, env).begin()
    try:
        result = transaction.query(soql, {}, max_rows=limit)
    finally:
        transaction.rollback()
        transaction.close()
    return QueryResultModel(records=result.records[:limit], total_size=result.total_size)
