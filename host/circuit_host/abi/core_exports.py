"""A core instance's ABI exports, looked up and called through wasmtime's C API.

wasmtime-py's public path wraps every export of a fresh instance (``Instance.exports``, ~45–90 µs)
and rebuilds a function's type objects and converts each value on every ``Func.__call__``
(~25–45 µs). The ABI's exports have fixed ``i32`` signatures, checked at load
(``abi/validation.py``), so the host finds each one by its position in the module's export list,
resolved once per module (``ExportPositions``), and calls it with the instance's own two value
arrays (``CoreFunc``). Traps raise ``wasmtime.Trap`` and errors ``wasmtime.WasmtimeError``, as
wasmtime-py's calls do.
"""

from __future__ import annotations

import ctypes
from collections.abc import Mapping
from dataclasses import dataclass
from types import MappingProxyType
from typing import Any

import wasmtime

from ..errors import GuestFault
from . import _wasmtime_private as private
from .signatures import MEMORY_EXPORT

MAX_PARAMS = 4  # cabi_realloc's; every other ABI export takes fewer


@dataclass(frozen=True)
class ExportPositions:
    """Where each export sits in a module's export list, the order an instance lists them in."""

    positions: Mapping[str, int]

    @classmethod
    def of(cls, module: wasmtime.Module) -> ExportPositions:
        return cls(MappingProxyType({export.name: i for i, export in enumerate(module.exports)}))


class CoreInstance:
    """A fresh instance of a pre-linked module in ``store``, with the ABI's exports at hand.

    Its functions share one parameter and one result array: wasmtime reads the parameters when a
    call starts and writes the result when it returns, and the result is read at once, so a call
    nested in a host call (``cabi_realloc`` while ``handle`` runs) cannot disturb another's values.
    """

    __slots__ = ("_ctx", "_instance", "_name", "_name_len", "_params", "_positions", "_raw", "_results")

    def __init__(self, store: wasmtime.Store, pre: wasmtime.InstancePre, positions: ExportPositions) -> None:
        self._ctx = private.store_context(store)
        self._raw = private.instantiate_pre(pre, self._ctx)
        self._instance = ctypes.byref(self._raw)
        self._positions = positions.positions
        self._params = private.i32_values(MAX_PARAMS)
        self._results = private.i32_values(1)
        # export_nth's name out-parameters, unused but required
        self._name = ctypes.byref(ctypes.POINTER(ctypes.c_char)())
        self._name_len = ctypes.byref(ctypes.c_size_t(0))

    def _extern(self, name: str, kind: int) -> Any:
        position = self._positions.get(name)
        item = private.CORE_EXTERN()
        found = position is not None and private.export_nth(
            self._ctx, self._instance, position, self._name, self._name_len, ctypes.byref(item)
        )
        if not found or item.kind != kind:
            raise GuestFault(f"export {name!r} is missing or of the wrong kind")
        return item.of

    def func(self, name: str, nparams: int, nresults: int) -> CoreFunc:
        """The export ``name``; its signature was checked at load, ``nparams``/``nresults`` restate it."""
        return CoreFunc(self, self._extern(name, private.EXTERN_FUNC).func, nparams, nresults)

    def memory(self) -> CoreMemory:
        return CoreMemory(self._ctx, self._extern(MEMORY_EXPORT, private.EXTERN_MEMORY).memory)

    def instance(self) -> wasmtime.Instance:
        """wasmtime-py's view of the same instance (its ``exports(store)`` mapping, for the test runner
        and coverage, which are not on the hot path)."""
        return private.instance_from_raw(self._raw)


class CoreFunc:
    """One exported function with ``i32`` parameters and at most one ``i32`` result.

    Called like a ``wasmtime.Func`` (``func(store, *args)``; the store is the instance's), so
    ``GuestMemory.call_back`` and the test runner take either.
    """

    __slots__ = ("_ctx", "_nparams", "_nresults", "_params", "_results", "_target")

    def __init__(self, instance: CoreInstance, func: Any, nparams: int, nresults: int) -> None:
        if nparams > MAX_PARAMS or nresults > 1:
            raise ValueError(f"a core ABI export takes at most {MAX_PARAMS} parameters and returns at most one value")
        self._ctx, self._target = instance._ctx, ctypes.byref(func)
        self._params, self._results = instance._params, instance._results
        self._nparams, self._nresults = nparams, nresults

    def __call__(self, store: object, *args: int) -> int | None:
        if len(args) != self._nparams:
            raise TypeError(f"expected {self._nparams} arguments, got {len(args)}")
        params = self._params
        for i, arg in enumerate(args):
            params[i].of.i32 = arg
        results = self._results
        trap = private.TRAP_POINTER()
        error = private.func_call(
            self._ctx, self._target, params, self._nparams, results, self._nresults, ctypes.byref(trap)
        )
        if error or trap:
            private.raise_failure(error, trap)
        return int(results[0].of.i32) if self._nresults else None


class CoreMemory:
    """An instance's linear memory, with the two probes ``GuestMemory`` makes (wasmtime-py's
    ``Memory`` signatures; the store argument is ignored, the memory is bound to its instance's)."""

    __slots__ = ("_ctx", "_memory")

    def __init__(self, context: Any, memory: Any) -> None:
        self._ctx, self._memory = context, ctypes.byref(memory)

    def data_len(self, store: object) -> int:
        return int(private.memory_data_size(self._ctx, self._memory))

    def data_ptr(self, store: object) -> Any:
        return private.memory_data(self._ctx, self._memory)
