"""The shapes the ABI is described in: WIT parameter and result types, host functions, exports.

This module holds types only; the one table of host functions is ``host_functions.py`` (and the
test world's extra rows, ``testing/capability.py``). From a row both bindings derive what they
need: the core-module lowering (what ``wasm-tools component embed --dummy-names legacy`` prints)
and the Component Model signature. The WIT files are the source of truth; ``tests/abi`` checks
the table against them.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from enum import Enum
from typing import Any

ABI_VERSION = "1.0.0"  # the frozen world; every interface of it keeps this version for ever
ABI_VERSIONS = ("1.0.0", "1.1.0")  # the worlds this host runs: 1.1.0 includes 1.0.0 and adds ``jobs``
PACKAGE = "circuit:script"


def interface_name(interface: str, version: str = ABI_VERSION) -> str:
    """The fully qualified name of one ABI interface, e.g. ``circuit:script/records@1.0.0``."""
    return f"{PACKAGE}/{interface}@{version}"


def abi_version_of(import_modules: Iterable[str]) -> str:
    """The ABI version a loaded module targets: the newest ``circuit:script/...@X`` it imports (a
    1.1.0 module imports 1.0.0 names and ``jobs@1.1.0``); ``ABI_VERSION`` when it imports none."""
    versions = [name.rpartition("@")[2] for name in import_modules if name.startswith(f"{PACKAGE}/") and "@" in name]
    known = [v for v in versions if v in ABI_VERSIONS]
    return max(known, key=ABI_VERSIONS.index, default=ABI_VERSION)


class Lowering(Enum):
    """How one WIT parameter is lowered to core values."""

    STRING = "string"  # (ptr, len), UTF-8
    BYTES = "list<u8>"  # (ptr, len)
    ENUM = "enum"  # one i32 discriminant


@dataclass(frozen=True)
class Param:
    """One WIT parameter type; an enum carries its case names (the capability receives the name)."""

    lowering: Lowering
    cases: tuple[str, ...] = ()

    @property
    def wit(self) -> str:
        if self.lowering is Lowering.ENUM:
            return f"enum {{{', '.join(self.cases)}}}"
        return str(self.lowering.value)

    @property
    def core_count(self) -> int:
        return 1 if self.lowering is Lowering.ENUM else 2


STRING = Param(Lowering.STRING)
BYTES = Param(Lowering.BYTES)


def enum(cases: Iterable[str]) -> Param:
    return Param(Lowering.ENUM, tuple(cases))


class Returns(Enum):
    """How a WIT result is lowered: the guest passes a return-area pointer as last param."""

    NOTHING = "nothing"
    BYTES = "list<u8>"  # 8-byte area: ptr, len
    RESULT_BYTES_OR_STRING = "result<list<u8>, string>"  # 12-byte area: tag u8, ptr, len
    RESULT_STRING_OR_STRING = "result<string, string>"  # the same 12-byte area; the ok payload is UTF-8

    @property
    def wit(self) -> str | None:
        return None if self is Returns.NOTHING else self.value

    @property
    def is_result(self) -> bool:
        """A ``result<_, string>``: a ``CatchableError`` the capability raises becomes ``err``."""
        return self in (Returns.RESULT_BYTES_OR_STRING, Returns.RESULT_STRING_OR_STRING)


Capability = Callable[..., Any]  # (context, *arguments) -> bytes | None; never sees wasmtime


@dataclass(frozen=True)
class HostFunction:
    """One host function a guest may import, described once.

    ``capability`` is called as ``capability(context, *args)`` with strings as ``str``, ``list<u8>``
    as ``bytes`` and enums as their case name. With ``Returns.RESULT_BYTES_OR_STRING`` it returns
    the ok bytes (``RESULT_STRING_OR_STRING``: the ok ``str``), and a ``CatchableError`` it raises
    becomes ``err(message)``; anything else it raises unwinds the guest. ``test_only`` rows exist
    only in test runtimes (``circuit-test``). ``version`` is the package version whose world added
    the interface (``abi/circuit.wit`` is 1.0.0, ``abi/circuit-1.1.wit`` adds 1.1.0's).
    """

    interface: str
    name: str
    params: tuple[Param, ...]
    returns: Returns
    capability: Capability
    test_only: bool = False
    version: str = ABI_VERSION

    @property
    def module(self) -> str:
        return interface_name(self.interface, self.version)

    @property
    def key(self) -> tuple[str, str]:
        return (self.module, self.name)

    @property
    def core_params(self) -> tuple[str, ...]:
        """The core-module lowering: i32 parameters, one more for the return area if any."""
        count = sum(p.core_count for p in self.params) + (self.returns is not Returns.NOTHING)
        return ("i32",) * count

    @property
    def wit_signature(self) -> str:
        """The Component Model type, e.g. ``func(string, list<u8>) -> result<list<u8>, string>``."""
        result = self.returns.wit
        return f"func({', '.join(p.wit for p in self.params)})" + ("" if result is None else f" -> {result}")

    @property
    def python_name(self) -> str:
        """The name the guest SDKs' bindings give it (``mock-callout`` -> ``mock_callout``)."""
        return self.name.replace("-", "_")


class RowIndex:
    """Host functions by small integers: the data a binding's one C callback receives."""

    def __init__(self) -> None:
        self._rows: list[HostFunction] = []
        self._numbers: dict[HostFunction, int] = {}

    def number(self, function: HostFunction) -> int:
        found = self._numbers.get(function)
        if found is None:
            found = self._numbers[function] = len(self._rows)
            self._rows.append(function)
        return found

    def __getitem__(self, number: int) -> HostFunction:
        return self._rows[number]


def by_key(functions: Iterable[HostFunction]) -> Mapping[tuple[str, str], HostFunction]:
    return {function.key: function for function in functions}


@dataclass(frozen=True)
class ExportSpec:
    """One function the host calls on a guest: its core lowering and its Component Model type."""

    name: str
    params: tuple[str, ...]
    results: tuple[str, ...]
    required: bool
    wit_signature: str | None = None  # None: a core-module-only export (the canonical ABI's helpers)


HANDLE_EXPORT = "handle"
EXPORT_FUNCS: tuple[ExportSpec, ...] = (
    ExportSpec("cabi_realloc", ("i32", "i32", "i32", "i32"), ("i32",), required=True),
    ExportSpec(
        HANDLE_EXPORT,
        ("i32", "i32"),
        ("i32",),
        required=True,
        wit_signature="func(list<u8>) -> " + Returns.RESULT_BYTES_OR_STRING.value,
    ),
    ExportSpec("cabi_post_handle", ("i32",), (), required=True),
    ExportSpec("_initialize", (), (), required=False),
)
MEMORY_EXPORT = "memory"

RESULT_AREA_SIZE = 12
LIST_AREA_SIZE = 8
AREA_ALIGN = 4

# The additive test world (abi/circuit-test.wit), and the component-only coverage world.
TEST_EXPORT_FUNCS: tuple[ExportSpec, ...] = (
    *EXPORT_FUNCS,
    ExportSpec("list-tests", (), ("i32",), required=True, wit_signature="func() -> list<u8>"),
    ExportSpec("cabi_post_list-tests", ("i32",), (), required=True),
    ExportSpec("run-test", ("i32", "i32"), ("i32",), required=True, wit_signature="func(string) -> result<_, string>"),
    ExportSpec("cabi_post_run-test", ("i32",), (), required=True),
)
COVERAGE_EXPORT = ExportSpec("coverage", (), (), required=False, wit_signature="func() -> list<u8>")
