"""Circuit Script SDK for Python guests.

from circuit_sdk import trigger, records, http, log, limits

@trigger("Contact", "after_insert")
def score(ctx):
    records.update("Contact", [{"Id": c["Id"], "Score__c": 1} for c in ctx.new])
"""

from __future__ import annotations

from . import http, limits, log, records
from .errors import CalloutError, CircuitError, DmlError, QueryError
from .trigger import TriggerContext, trigger

__all__ = [
    "CalloutError",
    "CircuitError",
    "DmlError",
    "QueryError",
    "TriggerContext",
    "http",
    "limits",
    "log",
    "records",
    "trigger",
]
