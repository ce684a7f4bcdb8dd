"""Circuit Script host: run user circuits compiled to WebAssembly under governor limits."""

from .errors import (
    CalloutError,
    CircuitError,
    DmlError,
    ExecutionTimeout,
    GuestFault,
    LimitExceeded,
    QueryError,
    Rejected,
)
from .execution.executions import ExecutionOptions, ExecutionRecord, Executor
from .execution.limits import LimitsProfile
from .sandbox.runtime import CircuitModule, Loaded, Runtime

__all__ = [
    "CalloutError",
    "CircuitError",
    "CircuitModule",
    "DmlError",
    "ExecutionOptions",
    "ExecutionRecord",
    "ExecutionTimeout",
    "Executor",
    "GuestFault",
    "LimitExceeded",
    "LimitsProfile",
    "Loaded",
    "QueryError",
    "Rejected",
    "Runtime",
]
