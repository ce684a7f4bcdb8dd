"""ABI v1 as core-wasm signatures: what ``wasm-tools component embed --dummy-names legacy`` prints.

The WIT file is the source of truth; ``tests/abi`` checks this table against it.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import Enum

ABI_VERSION = "1.0.0"
PACKAGE = "circuit:script"


class Param(Enum):
    """How one WIT parameter is lowered to core values."""

    STRING = "string"  # (ptr, len), UTF-8
    BYTES = "list<u8>"  # (ptr, len)
    ENUM = "enum"  # one i32 discriminant


class Returns(Enum):
    """How a WIT result is lowered: the guest passes a return-area pointer as last param."""

    NOTHING = "nothing"
    BYTES = "list<u8>"  # 8-byte area: ptr, len
    RESULT_BYTES_OR_STRING = "result<list<u8>, string>"  # 12-byte area: tag u8, ptr, len


@dataclass(frozen=True)
class ImportSpec:
    """One host function a guest may import."""

    interface: str
    name: str
    params: tuple[Param, ...]
    returns: Returns
    enum_cases: int = 0  # number of cases of the (single) enum param, if any

    @property
    def module(self) -> str:
        return f"{PACKAGE}/{self.interface}@{ABI_VERSION}"

    @property
    def core_params(self) -> tuple[str, ...]:
        count = sum(1 if p is Param.ENUM else 2 for p in self.params)
        if self.returns is not Returns.NOTHING:
            count += 1
        return ("i32",) * count


DML_OPS = ("insert", "update", "upsert", "delete", "undelete")
LOG_LEVELS = ("debug", "info", "warn", "error")

RECORDS_QUERY = ImportSpec("records", "query", (Param.STRING, Param.BYTES), Returns.RESULT_BYTES_OR_STRING)
RECORDS_DML = ImportSpec(
    "records", "dml", (Param.ENUM, Param.STRING, Param.BYTES), Returns.RESULT_BYTES_OR_STRING, len(DML_OPS)
)
HTTP_CALLOUT = ImportSpec("http", "callout", (Param.BYTES,), Returns.RESULT_BYTES_OR_STRING)
LOG_WRITE = ImportSpec("log", "write", (Param.ENUM, Param.STRING), Returns.NOTHING, len(LOG_LEVELS))
LIMITS_USAGE = ImportSpec("limits", "usage", (), Returns.BYTES)

IMPORTS: tuple[ImportSpec, ...] = (RECORDS_QUERY, RECORDS_DML, HTTP_CALLOUT, LOG_WRITE, LIMITS_USAGE)
IMPORTS_BY_KEY: dict[tuple[str, str], ImportSpec] = {(spec.module, spec.name): spec for spec in IMPORTS}


@dataclass(frozen=True)
class ExportSpec:
    name: str
    params: tuple[str, ...]
    results: tuple[str, ...]
    required: bool


EXPORT_FUNCS: tuple[ExportSpec, ...] = (
    ExportSpec("cabi_realloc", ("i32", "i32", "i32", "i32"), ("i32",), required=True),
    ExportSpec("handle", ("i32", "i32"), ("i32",), required=True),
    ExportSpec("cabi_post_handle", ("i32",), (), required=True),
    ExportSpec("_initialize", (), (), required=False),
)
MEMORY_EXPORT = "memory"

RESULT_AREA_SIZE = 12
LIST_AREA_SIZE = 8
AREA_ALIGN = 4

# -- the additive test world (abi/circuit-test.wit): linked only for test modules ----------------

TESTING_MOCK_CALLOUT = ImportSpec("testing", "mock-callout", (Param.BYTES,), Returns.RESULT_BYTES_OR_STRING)
TESTING_MOCK_CALLS = ImportSpec("testing", "mock-calls", (Param.BYTES,), Returns.RESULT_BYTES_OR_STRING)
TESTING_CREATE_RECORDS = ImportSpec(
    "testing", "create-records", (Param.STRING, Param.BYTES), Returns.RESULT_BYTES_OR_STRING
)
TESTING_START_TEST = ImportSpec("testing", "start-test", (), Returns.NOTHING)
TESTING_STOP_TEST = ImportSpec("testing", "stop-test", (), Returns.NOTHING)
TESTING_FAIL = ImportSpec("testing", "fail", (Param.STRING,), Returns.NOTHING)

TESTING_IMPORTS: tuple[ImportSpec, ...] = (
    TESTING_MOCK_CALLOUT,
    TESTING_MOCK_CALLS,
    TESTING_CREATE_RECORDS,
    TESTING_START_TEST,
    TESTING_STOP_TEST,
    TESTING_FAIL,
)
TEST_IMPORTS_BY_KEY: dict[tuple[str, str], ImportSpec] = {
    **IMPORTS_BY_KEY,
    **{(spec.module, spec.name): spec for spec in TESTING_IMPORTS},
}
TEST_EXPORT_FUNCS: tuple[ExportSpec, ...] = (
    *EXPORT_FUNCS,
    ExportSpec("list-tests", (), ("i32",), required=True),  # -> retptr of a list<u8> area
    ExportSpec("cabi_post_list-tests", ("i32",), (), required=True),
    ExportSpec("run-test", ("i32", "i32"), ("i32",), required=True),  # name -> retptr of result<_, string>
    ExportSpec("cabi_post_run-test", ("i32",), (), required=True),
)
