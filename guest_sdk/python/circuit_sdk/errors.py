"""Errors a circuit may catch. Governor violations are not here: they end the execution."""

from __future__ import annotations


class CircuitError(Exception):
    """Base class of the errors the host reports as ``err`` results."""


class QueryError(CircuitError):
    """``records.query`` failed: bad SOQL, unknown bind, bad value."""


class DmlError(CircuitError):
    """A DML statement failed validation; nothing was written."""


class CalloutError(CircuitError):
    """``http.callout`` failed: host not allowed, connection failure, timeout, response too large."""


class JobError(CircuitError):
    """``jobs.enqueue`` failed: unknown circuit, payload not JSON-like or too large, chain depth limit."""
