"""Driver errors in the tenant's terms: no SQL, table or index names, parameters or paths leave the host.

A database error names the generated SQL and the ``cdb_<hash>_`` tables behind a tenant's
objects, which are the host's business. ``translated`` turns one into the caller's error type,
saying in SOQL terms (the object, what went wrong with a value) what failed and giving a
reference; the internal detail goes to the server log under that reference.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from contextlib import contextmanager

import sqlalchemy as sa
import structlog

from ..connectors.records import QueryTimeout
from ..errors import CircuitError, QueryError

log = structlog.get_logger("circuit.circuitdb")

_QUERY_CANCELED = "57014"  # PostgreSQL: statement_timeout (or a cancel request)
_TOO_COMPLEX = ("stack overflow", "too large", "too many")  # SQLite's limits on a statement's shape


def is_interrupted(exc: sa.exc.StatementError) -> bool:
    """The statement was cut off by the time limit it ran under (SQLite's progress handler, PostgreSQL's
    ``statement_timeout``)."""
    return getattr(exc.orig, "sqlstate", None) == _QUERY_CANCELED or "interrupted" in str(exc.orig)


def plain_cause(exc: sa.exc.StatementError) -> str:
    """What went wrong, in words that name no table, column or statement."""
    text = str(exc.orig).lower()
    if "nul" in text and "0x00" in text:
        return "a text value contains a NUL character, which the records store cannot hold"
    if "out of range" in text or "overflow" in text or "too large to convert" in text:
        return "a value is out of range for its field"
    if isinstance(exc, sa.exc.OperationalError) and any(words in text for words in _TOO_COMPLEX):
        return "the query is too complex"
    if isinstance(exc, sa.exc.DataError):
        return "a value does not fit its field"
    if isinstance(exc, sa.exc.IntegrityError):
        return "a value on a unique field is already taken"
    return "the records store could not run it"


@contextmanager
def translated(what: str, error: type[CircuitError] = QueryError, timeout_ms: int | None = None) -> Iterator[None]:
    """Run database work, raising ``error("<what>: <cause> (reference …)")`` for a driver error, and
    ``QueryTimeout`` when the work was cut off after ``timeout_ms``."""
    try:
        yield
    except sa.exc.StatementError as exc:  # DBAPIError, and failures to bind a value
        if timeout_ms is not None and is_interrupted(exc):
            raise QueryTimeout(f"{what}: still running after {timeout_ms} ms") from None
        reference = uuid.uuid4().hex[:12]
        log.warning(
            "records store error",
            reference=reference,
            what=what,
            error=f"{type(exc.orig).__name__}: {exc.orig}",
            statement=exc.statement,
        )
        raise error(f"{what}: {plain_cause(exc)} (reference {reference})") from None
