"""``circuit test DIR``: build the circuit's test module, then run every test against a scratch store."""

from __future__ import annotations

import tempfile
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path

from ..bundles.manifest import Manifest, read_manifest
from ..circuitdb import open_store
from ..circuitdb.store import SchemaChanges
from ..coverage import CoverageReport, LineTable, instrument, merge_counters, read_counters
from ..limits import LimitsProfile
from ..runtime import Runtime
from .runner import TestReport, TestRunner


def run_circuit_tests(
    source_dir: Path,
    out_dir: Path | None = None,
    cache_dir: Path | None = None,
    names: list[str] | None = None,
    limits: LimitsProfile | None = None,
    coverage: bool = False,
) -> TestReport:
    """Build ``source_dir``'s tests (``tests.zig``) and run them on a temporary SQLite store.

    The store gets the ``[schema]`` of ``source_dir/circuit.toml``, and the manifest's
    ``[[triggers]]`` bind the circuit, so a test's DML fires it as production would.
    With ``coverage``, the test module is instrumented and every store's counters (the test's
    and its triggers') are merged and mapped to the circuit's own source lines.
    """
    from ..build import build_tests

    source_dir = Path(source_dir)
    wasm = build_tests(source_dir, out_dir)
    manifest_path = source_dir / "circuit.toml"
    manifest = read_manifest(manifest_path) if manifest_path.is_file() else None
    keep = _circuit_source(source_dir) if coverage else None
    return run_test_module(wasm.read_bytes(), manifest, cache_dir, names, limits, keep)


def run_test_module(
    wasm: bytes,
    manifest: Manifest | None,
    cache_dir: Path | None = None,
    names: list[str] | None = None,
    limits: LimitsProfile | None = None,
    coverage_of: Callable[[str], bool] | None = None,
    schema: SchemaChanges | None = None,
) -> TestReport:
    """Run a built test module against a scratch store; with ``coverage_of``, measure the files it keeps.

    ``schema`` (an environment's custom objects and fields) is applied before the manifest's own, so
    the deploy gate tests against the schema the circuit will meet.
    """
    limits = limits or (manifest.limits_profile(LimitsProfile()) if manifest is not None else LimitsProfile())
    with tempfile.TemporaryDirectory(prefix="circuit-test-") as scratch:
        records = open_store(Path(scratch) / "records.db")
        try:
            if schema is not None:
                records.apply_schema(schema)
            if manifest is not None:
                records.apply_schema(manifest.schema_changes())
            with Runtime(cache_dir=cache_dir, testing=True) as runtime:
                if coverage_of is None:
                    module = runtime.load_module(wasm, limits.memory_bytes)
                    return TestRunner(runtime, module, records, manifest, limits).run_all(names)
                instrumented = instrument(wasm)
                runs: list[bytes] = []
                runtime.store_observer = lambda store, instance: runs.append(
                    read_counters(store, instance, instrumented.counter_count)
                )
                module = runtime.load_module(instrumented.wasm, limits.memory_bytes)
                report = TestRunner(runtime, module, records, manifest, limits).run_all(names)
                counters = merge_counters(runs, instrumented.counter_count)
                measured = CoverageReport.from_counters(instrumented, counters, LineTable.from_wasm(wasm))
                return replace(report, coverage=measured.restricted_to(coverage_of))
        finally:
            records.close()


def outside_sdk(path: str) -> bool:
    """Coverage of a bundle's test module where its sources are not at hand (the deploy gate):
    count the circuit's files, leaving out its tests, the guest SDK and Zig's own library."""
    normalized = path.replace("\\", "/")
    if not normalized.startswith("/") or not normalized.endswith(".zig"):
        return False  # relative DWARF paths are Zig's compiler_rt and std
    excluded = ("/guest_sdk/zig/", "/ziglang/lib/", "/lib/std/", "/lib/compiler_rt/")
    return normalized.rsplit("/", 1)[-1] != "tests.zig" and not any(part in normalized for part in excluded)


def _circuit_source(source_dir: Path) -> Callable[[str], bool]:
    """Coverage counts the circuit's own files: not its tests, not the SDK, not Zig's std."""
    root = source_dir.resolve()

    def keep(path: str) -> bool:
        candidate = Path(path)
        if not candidate.is_absolute():
            candidate = root / candidate
        try:
            relative = candidate.resolve().relative_to(root)
        except ValueError:
            return False
        # Relative DWARF paths (Zig's compiler_rt, say) only count if the file really is here.
        return relative.suffix == ".zig" and relative.name != "tests.zig" and candidate.is_file()

    return keep
