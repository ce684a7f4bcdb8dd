"""The tenant's own record API: writes fire triggers like circuit DML does; reads are SOQL."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Path, Query, Response
from fastapi.concurrency import run_in_threadpool

from ...connectors.records import DmlOp, QueryTimeout
from ..auth import Caller, require, state_of
from ..problems import Problem
from ..state import ServerState
from .models import Environment, ExecutionSummary, QueryResultModel, RecordWrite, WriteResult

router = APIRouter(prefix="/v1", tags=["records"])
OBJECT_NAME = r"^[A-Za-z][A-Za-z0-9_]{0,79}$"


@router.post("/records/{object_name}", response_model=WriteResult, summary="Write records, firing their triggers")
async def write_records(
    object_name: Annotated[str, Path(pattern=OBJECT_NAME)],
    body: RecordWrite,
    env: Environment = "production",
    caller: Caller = Depends(require("deploy")),
    state: ServerState = Depends(state_of),
) -> WriteResult:
    """Over the tenant's or the server's bound of executions at once, the write waits up to the
    server's `admission_wait_ms` for a slot, then is refused (429 or 503, with Retry-After)."""
    async with state.admission.waited(caller.tenant_id):
        record = await run_in_threadpool(
            state.apply_change,
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
) -> Response:
    """At most ``limit`` rows; a query running longer than the server's ``query_timeout_ms``, or an
    answer over ``max_query_response_bytes``, is refused with a 400 problem."""
    settings = state.settings
    crm = state.crm_outbox.records_for(caller.tenant_id, env, state.platform.tenants.get_settings(caller.tenant_id))
    transaction = (crm or state.store(caller.tenant_id, env)).begin()  # where the environment's records live
    try:
        result = transaction.query(soql, {}, max_rows=limit, timeout_ms=settings.query_timeout_ms)
    except QueryTimeout:
        raise Problem(
            400,
            "Query timed out",
            f"the query ran longer than the {settings.query_timeout_ms} ms this endpoint allows; "
            "narrow its WHERE clause or shorten its LIKE patterns",
        ) from None
    finally:
        transaction.rollback()
        transaction.close()
        if crm is not None:
            crm.close()
    body = QueryResultModel(records=result.records[:limit], total_size=result.total_size).model_dump_json().encode()
    if len(body) > settings.max_query_response_bytes:
        raise Problem(
            400,
            "Query result too large",
            f"the answer would be {len(body)} bytes, over the {settings.max_query_response_bytes} this endpoint "
            "allows; select fewer fields or lower the limit",
        )
    return Response(body, media_type="application/json")
