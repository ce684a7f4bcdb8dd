"""Jobs of the caller's tenant: list, show, cancel, retry (dead-lettered jobs)."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Path, Query
from pydantic import BaseModel

from ...jobs import Job, JobFilter, JobState
from ..auth import Caller, require, state_of
from ..problems import Problem
from ..state import ServerState
from .models import Environment

router = APIRouter(prefix="/v1/jobs", tags=["jobs"])
# A database integer: a larger id is a 422, not an overflow in the driver.
JobId = Annotated[int, Path(ge=1, le=2**63 - 1, description="a job's id")]


class JobView(BaseModel):
    id: int
    kind: str
    state: JobState
    circuit: str | None
    env: str | None
    payload: Any
    attempts: int
    max_attempts: int
    run_at: datetime | None
    created_at: datetime
    last_error: str | None
    execution_id: str | None
    cancel_requested: bool


class JobPage(BaseModel):
    jobs: list[JobView]
    next_before: int | None


def view(job: Job) -> JobView:
    return JobView(
        id=job.id,
        kind=job.kind,
        state=job.state,
        circuit=job.circuit,
        env=job.env,
        payload=job.payload,
        attempts=job.attempts,
        max_attempts=job.max_attempts,
        run_at=job.run_at,
        created_at=job.created_at,
        last_error=job.last_error,
        execution_id=job.execution_id,
        cancel_requested=job.cancel_requested,
    )


@router.get("", response_model=JobPage, summary="List jobs, newest first")
def list_jobs(
    kind: str | None = None,
    state: JobState | None = None,
    circuit: str | None = None,
    env: Environment | None = None,
    before: Annotated[int | None, Query(ge=1, le=2**63 - 1)] = None,
    limit: Annotated[int, Query(ge=1, le=500)] = 50,
    caller: Caller = Depends(require("read")),
    server: ServerState = Depends(state_of),
) -> JobPage:
    found = server.jobs.queue.list_jobs(
        JobFilter(
            tenant_id=caller.tenant_id, kind=kind, state=state, circuit=circuit, env=env, before_id=before, limit=limit
        )
    )
    page = [view(j) for j in found]
    return JobPage(jobs=page, next_before=page[-1].id if len(page) == limit else None)


@router.get("/{job_id}", response_model=JobView, summary="One job")
def get_job(
    job_id: JobId, caller: Caller = Depends(require("read")), server: ServerState = Depends(state_of)
) -> JobView:
    job = server.jobs.queue.get(job_id, tenant_id=caller.tenant_id)
    if job is None:
        raise Problem(404, "Not found", f"no job {job_id}")
    return view(job)


@router.post("/{job_id}/cancel", response_model=JobView, summary="Cancel a waiting job, or ask a running one to stop")
def cancel_job(
    job_id: JobId, caller: Caller = Depends(require("deploy")), server: ServerState = Depends(state_of)
) -> JobView:
    return view(server.jobs.queue.cancel(job_id, tenant_id=caller.tenant_id))


@router.post("/{job_id}/retry", response_model=JobView, summary="Queue a dead job again for one more attempt")
def retry_job(
    job_id: JobId, caller: Caller = Depends(require("deploy")), server: ServerState = Depends(state_of)
) -> JobView:
    return view(server.jobs.queue.retry(job_id, tenant_id=caller.tenant_id))
