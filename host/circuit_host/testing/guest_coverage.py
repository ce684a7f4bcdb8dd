"""Line coverage a Python test component measured itself (export ``coverage``, world
``circuit-test-coverage``), collected from every instance a test run made and merged.

The report comes from guest code, so it is treated as hostile input: it is read with a fresh,
bounded fuel and time budget, decoded with the usual msgpack limits, and shape-checked; a
malformed report counts as no coverage, never as a host error.
"""

from __future__ import annotations

from typing import Any

import structlog
import wasmtime
import wasmtime.component as wc

from ..abi.codec import decode
from ..coverage import CoverageReport, FileCoverage
from ..errors import CircuitError
from ..sandbox.engine import deadline_ticks

log = structlog.get_logger("circuit.testing")

COVERAGE_EXPORT = "coverage"
READ_FUEL = 2_000_000_000
READ_TIMEOUT_MS = 5_000
MAX_FILES = 1_000
MAX_LINE = 1_000_000


class GuestCoverage:
    """Pass ``observe`` as the component host's observer; ``report()`` merges what it saw."""

    def __init__(self) -> None:
        self.lines: dict[str, set[int]] = {}
        self.hit: dict[str, set[int]] = {}
        self.instances = 0

    def observe(self, store: wasmtime.Store, instance: wc.Instance) -> None:
        func = instance.get_func(store, COVERAGE_EXPORT)
        if func is None:
            return
        try:
            store.set_fuel(READ_FUEL)
            store.set_epoch_deadline(deadline_ticks(READ_TIMEOUT_MS))
            payload = func(store)
            self._merge(decode(payload, "coverage") if isinstance(payload, bytes) else None)
        except (wasmtime.WasmtimeError, CircuitError) as exc:  # a trapped instance cannot be entered again
            log.debug("no coverage from this instance", error=str(exc).splitlines()[0] if str(exc) else "")

    def _merge(self, files: Any) -> None:
        if not isinstance(files, dict) or len(files) > MAX_FILES:
            return
        self.instances += 1
        for name, entry in files.items():
            if not (isinstance(name, str) and isinstance(entry, dict)):
                continue
            lines, hit = _lines(entry.get("lines")), _lines(entry.get("hit"))
            self.lines.setdefault(name, set()).update(lines)
            self.hit.setdefault(name, set()).update(hit & lines)

    def report(self) -> CoverageReport:
        files = {
            name: FileCoverage(name, {line: int(line in self.hit.get(name, ())) for line in sorted(lines)})
            for name, lines in sorted(self.lines.items())
        }
        return CoverageReport(files)


def _lines(value: Any) -> set[int]:
    if not isinstance(value, list):
        return set()
    return {n for n in value if isinstance(n, int) and not isinstance(n, bool) and 0 < n <= MAX_LINE}
