"""``circuit test DIR``: build the circuit's test module, then run every test against a scratch store."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path

from ..bundles.manifest import Manifest, read_manifest
from ..circuitdb import CircuitDB, SchemaLimits, open_store
from ..circuitdb.store import SchemaChanges
from ..coverage import CoverageReport, FileCoverage, LineTable, instrument, merge_counters, read_counters
from ..errors import Rejected
from ..execution.governor import Usage
from ..execution.limits import LimitsProfile
from ..sandbox.components import is_component
from ..sandbox.runtime import Runtime
from ..toolchain.python_build import is_python_circuit
from .capability import runtime_for_tests
from .guest_coverage import GuestCoverage
from .runner import TestBudget, TestReport, TestResult, TestRunner

NO_TESTS_COLLECTED = 5  # pytest's exit code


def is_test_file(name: str) -> bool:
    """Python test files, which coverage never counts (as ``circuit_sdk._coverage`` decides)."""
    return name == "tests.py" or name.startswith("test_") or name == "conftest.py"


def run_circuit_tests(
    source_dir: Path,
    out_dir: Path | None = None,
    cache_dir: Path | None = None,
    names: list[str] | None = None,
    limits: LimitsProfile | None = None,
    coverage: bool = False,
) -> TestReport:
    """Build ``source_dir``'s tests (``tests.zig``) and run them on a temporary SQLite store.

    A Python circuit's ``tests.py`` runs twice, natively under pytest then in the sandbox
    (``report.native`` is the pytest run).

    The store gets the ``[schema]`` of ``source_dir/circuit.toml``, and the manifest's
    ``[[triggers]]`` bind the circuit, so a test's DML fires it as production would.
    With ``coverage``, the test module is instrumented and every store's counters (the test's
    and its triggers') are merged and mapped to the circuit's own source lines.
    """
    from ..toolchain.zig_build import build_tests

    source_dir = Path(source_dir)
    if is_python_circuit(source_dir):
        return _run_python_circuit_tests(source_dir, out_dir, cache_dir, names, limits, coverage)
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
    budget: TestBudget | None = None,
    schema_limits: SchemaLimits | None = None,
) -> TestReport:
    """Run a built test module against a scratch store; with ``coverage_of``, measure the files it keeps.

    ``schema`` (an environment's custom objects and fields) is applied before the manifest's own, so
    the deploy gate tests against the schema the circuit will meet, within that environment's
    ``schema_limits`` (CircuitDB's defaults if None).
    """
    limits = limits or (manifest.limits_profile(LimitsProfile()) if manifest is not None else LimitsProfile())
    with tempfile.TemporaryDirectory(prefix="circuit-test-") as scratch:
        records = open_store(Path(scratch) / "records.db", schema_limits=schema_limits)
        try:
            if schema is not None:
                records.apply_schema(schema)
            if manifest is not None:
                records.apply_schema(manifest.schema_changes())
            with runtime_for_tests(cache_dir) as runtime:
                if is_component(wasm):
                    return _run_test_component(runtime, wasm, records, manifest, limits, names, coverage_of, budget)
                if coverage_of is None:
                    module = runtime.load_module(wasm, limits.memory_bytes)
                    return TestRunner(runtime, module, records, manifest, limits).run_all(names, budget)
                instrumented = instrument(wasm, runtime.engine)  # wasmtime validates it first
                runs: list[bytes] = []
                runtime.store_observer = lambda store, instance: runs.append(
                    read_counters(store, instance, instrumented.counter_count)
                )
                module = runtime.load_module(instrumented.wasm, limits.memory_bytes, extra_memories=1)
                report = TestRunner(runtime, module, records, manifest, limits).run_all(names, budget)
                counters = merge_counters(runs, instrumented.counter_count)
                measured = CoverageReport.from_counters(
                    instrumented, counters, LineTable.from_wasm(wasm, runtime.engine)
                )
                return replace(report, coverage=measured.restricted_to(coverage_of))
        finally:
            records.close()


def _run_test_component(
    runtime: Runtime,
    wasm: bytes,
    records: CircuitDB,
    manifest: Manifest | None,
    limits: LimitsProfile,
    names: list[str] | None,
    coverage_of: Callable[[str], bool] | None,
    budget: TestBudget | None = None,
) -> TestReport:
    """A Python test component: the guest measures its own coverage, read after every instance."""
    loaded = runtime.load(wasm)
    collected = GuestCoverage()
    if coverage_of is not None:
        runtime.components.observer = collected.observe
    report = TestRunner(runtime, loaded, records, manifest, limits).run_all(names, budget)
    if coverage_of is None:
        return report
    return replace(report, coverage=collected.report().restricted_to(coverage_of))


def _run_python_circuit_tests(
    source_dir: Path,
    out_dir: Path | None,
    cache_dir: Path | None,
    names: list[str] | None,
    limits: LimitsProfile | None,
    coverage: bool,
) -> TestReport:
    """A Python circuit's ``tests.py``, twice: natively under pytest (coverage.py), then built into
    a test component and run in the sandbox. The report is the sandbox's; ``native`` the pytest run's."""
    from ..toolchain.python_build import build_python_tests, vendor_declared

    source_dir = Path(source_dir).resolve()
    if not (source_dir / "tests.py").is_file():
        raise Rejected(f"no tests: {source_dir / 'tests.py'} does not exist")
    out_dir = Path(out_dir).resolve() if out_dir is not None else source_dir / "build"
    dependencies = vendor_declared(source_dir, out_dir)
    native = run_native_tests(source_dir, names, coverage, dependencies)
    wasm = build_python_tests(source_dir, out_dir / f"{source_dir.name}_tests.wasm", dependencies)
    manifest_path = source_dir / "circuit.toml"
    manifest = read_manifest(manifest_path) if manifest_path.is_file() else None
    sandboxed = run_test_module(
        wasm.read_bytes(), manifest, cache_dir, names, limits, outside_sdk if coverage else None
    )
    return replace(sandboxed, native=native)


def run_native_tests(
    source_dir: Path,
    names: list[str] | None = None,
    coverage: bool = False,
    dependencies: tuple[Path, ...] = (),
    timeout_s: float = 600,
) -> TestReport:
    """Run ``tests.py`` under pytest in a subprocess (``native_run``) and read its report."""
    with tempfile.TemporaryDirectory(prefix="circuit-native-") as scratch:
        out = Path(scratch) / "report.json"
        command = [sys.executable, "-m", "circuit_host.testing.native_run", str(source_dir), "--out", str(out)]
        for name in names or ():
            command += ["--name", name]
        if not coverage:
            command.append("--no-coverage")
        deps = [str(path) for path in dependencies]
        env = {**os.environ, "PYTHONPATH": os.pathsep.join([*deps, os.environ.get("PYTHONPATH", "")])}
        try:
            done = subprocess.run(
                command, capture_output=True, text=True, timeout=timeout_s, check=False, env=env, cwd=source_dir
            )
        except subprocess.TimeoutExpired:
            raise Rejected(f"the native test run of {source_dir} took longer than {timeout_s:.0f} s") from None
        if not out.is_file():
            detail = (done.stderr or done.stdout).strip()[-4000:]
            raise Rejected(f"the native test run of {source_dir} failed to start:\n{detail}")
        data = json.loads(out.read_text())
    if not data["results"] and data["exit_code"] != NO_TESTS_COLLECTED:
        detail = (done.stdout or done.stderr).strip()[-4000:]
        raise Rejected(f"pytest could not run the tests of {source_dir}:\n{detail}")
    results = [
        TestResult(
            r["name"],
            r["status"],
            r["message"],
            usage=_usage_of(r["usage"]),
            test_usage=_usage_of(r["test_usage"]) if r["test_usage"] is not None else None,
            duration_ms=r["duration_ms"],
        )
        for r in data["results"]
    ]
    files = data.get("coverage")
    report = None
    if files is not None:
        report = CoverageReport(
            {
                name: FileCoverage(name, {line: int(line in set(entry["hit"])) for line in entry["lines"]})
                for name, entry in files.items()
            }
        )
    return TestReport(results, report)


def _usage_of(data: dict[str, dict[str, int]]) -> dict[str, Usage]:
    return {name: Usage(entry["used"], entry["limit"]) for name, entry in data.items()}


def outside_sdk(path: str) -> bool:
    """Coverage of a bundle's test module where its sources are not at hand (the deploy gate):
    count the circuit's files, leaving out its tests, the guest SDK and Zig's own library."""
    normalized = path.replace("\\", "/")
    if normalized.endswith(".py"):  # a Python test component reports only the circuit's own files
        return not normalized.startswith(("/", "../")) and not is_test_file(normalized.rsplit("/", 1)[-1])
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
