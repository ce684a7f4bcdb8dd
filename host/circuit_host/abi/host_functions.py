"""The ABI's host functions: one row each, the only list of them.

The core-module linker (``lowering``), the Component Model binding (``component_binding``) and
the native test binding (``testing/native.py``) all iterate this table; validation checks imports
against it. Adding a capability is one row here, one module in ``capabilities/`` and the SDK
functions. The test world's rows live with the test framework (``testing/capability.py``),
which hands them to the runtimes it makes: production code never links them.
"""

from __future__ import annotations

from ..capabilities import http, jobs, limits, log, records
from ..connectors.records import DmlOp
from ..execution.execution_log import LEVELS
from .signatures import BYTES, STRING, HostFunction, Returns, enum

DML_OPS = tuple(op.name.lower() for op in DmlOp)  # the WIT enum ``dml-op``, in discriminant order

ABI_FUNCTIONS: tuple[HostFunction, ...] = (
    HostFunction("records", "query", (STRING, BYTES), Returns.RESULT_BYTES_OR_STRING, records.query),
    HostFunction("records", "dml", (enum(DML_OPS), STRING, BYTES), Returns.RESULT_BYTES_OR_STRING, records.dml),
    HostFunction("http", "callout", (BYTES,), Returns.RESULT_BYTES_OR_STRING, http.callout),
    HostFunction("log", "write", (enum(LEVELS), STRING), Returns.NOTHING, log.write),
    HostFunction("limits", "usage", (), Returns.BYTES, limits.usage),
    # ABI 1.1.0 (abi/circuit-1.1.wit): additive; modules of the 1.0.0 world never see it.
    HostFunction("jobs", "enqueue", (STRING, BYTES), Returns.RESULT_STRING_OR_STRING, jobs.enqueue, version="1.1.0"),
)
