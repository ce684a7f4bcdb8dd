"""``jobs.enqueue`` (ABI 1.1.0): ask for a queueable job, charged to ``async_jobs``.

The job is only an intent until the execution commits (``execution/job_intents.py``); the id
returned is the job's idempotency key, ``exec:<execution id>:<n>``.
"""

from __future__ import annotations

from ..abi.codec import decode
from ..execution.context import ExecutionContext
from ..execution.job_intents import JobError

MAX_CIRCUIT_NAME = 200


def enqueue(context: ExecutionContext, circuit: str, payload: bytes) -> str:
    context.governor.charge("async_jobs")
    if not 0 < len(circuit) <= MAX_CIRCUIT_NAME:
        raise JobError(f"a circuit name is 1 to {MAX_CIRCUIT_NAME} characters")
    value = decode(payload, "jobs.enqueue payload") if payload else None
    intent = context.jobs.add(circuit, value)
    context.log.event("JOB_ENQUEUE", f"{intent.key}: {circuit}, when the execution commits")
    return intent.key
