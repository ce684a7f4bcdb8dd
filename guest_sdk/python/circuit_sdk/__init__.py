"""Circuit Script SDK for Python guests.

from circuit_sdk import trigger, records, http, log, limits

@trigger("Contact", "after_insert")
def score(ctx):
    records.update("Contact", [{"Id": c["Id"], "Score__c": 1} for c in ctx.new])
"""

from __future__ import annotations

from . import http, jobs, limits, log, records
from .async_events import AsyncContext, batch_execute, batch_finish, batch_start, job, schedule
from .errors import CalloutError, CircuitError, DmlError, JobError, QueryError
from .trigger import TriggerContext, trigger

__all__ = [
    "AsyncContext",
    "CalloutError",
    "CircuitError",
    "DmlError",
    "JobError",
    "QueryError",
    "TriggerContext",
    "batch_execute",
    "batch_finish",
    "batch_start",
    "http",
    "job",
    "jobs",
    "limits",
    "log",
    "records",
    "schedule",
    "trigger",
]
