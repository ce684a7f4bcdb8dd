"""Getting counters out of a finished run, and adding up several runs."""

from __future__ import annotations

from collections.abc import Iterable

import wasmtime

from ._instrument import COUNTERS_EXPORT


def read_counters(store: wasmtime.Store, instance: wasmtime.Instance, count: int | None = None) -> bytes:
    """The counter bytes of an instrumented instance (the first `count`, or the whole counters memory)."""
    memory = instance.exports(store).get(COUNTERS_EXPORT)
    if not isinstance(memory, wasmtime.Memory):
        raise LookupError(f"the instance exports no {COUNTERS_EXPORT!r} memory: was the module instrumented?")
    size = memory.data_len(store)
    wanted = size if count is None else count
    if not 0 <= wanted <= size:
        raise ValueError(f"{wanted} counters asked for, the counters memory holds {size}")
    return bytes(memory.read(store, 0, wanted))


def merge_counters(runs: Iterable[bytes], count: int) -> list[int]:
    """Per block, in how many of `runs` it was reached. Each run is one fresh store's counter bytes."""
    totals = [0] * count
    for run in runs:
        if len(run) < count:
            raise ValueError(f"a run has {len(run)} counters, {count} expected")
        for i in range(count):
            if run[i]:
                totals[i] += 1
    return totals
