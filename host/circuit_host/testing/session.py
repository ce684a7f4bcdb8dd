"""``circuit test DIR``: build the circuit's test module, then run every test against a scratch store."""

from __future__ import annotations

import tempfile
from pathlib import Path

from ..bundles.manifest import read_manifest
from ..circuitdb import open_store
from ..limits import LimitsProfile
from ..runtime import Runtime
from .runner import TestReport, TestRunner


def run_circuit_tests(
    source_dir: Path,
    out_dir: Path | None = None,
    cache_dir: Path | None = None,
    names: list[str] | None = None,
    limits: LimitsProfile | None = None,
) -> TestReport:
    """Build ``source_dir``'s tests (``tests.zig``) and run them on a temporary SQLite store.

    The store gets the ``[schema]`` of ``source_dir/circuit.toml``, and the manifest's
    ``[[triggers]]`` bind the circuit, so a test's DML fires it as production would.
    """
    from ..build import build_tests

    source_dir = Path(source_dir)
    wasm = build_tests(source_dir, out_dir)
    manifest_path = source_dir / "circuit.toml"
    manifest = read_manifest(manifest_path) if manifest_path.is_file() else None
    limits = limits or LimitsProfile()
    with tempfile.TemporaryDirectory(prefix="circuit-test-") as scratch:
        records = open_store(Path(scratch) / "records.db")
        try:
            if manifest is not None:
                records.apply_schema(manifest.schema_changes())
            with Runtime(cache_dir=cache_dir, testing=True) as runtime:
                module = runtime.load(wasm.read_bytes(), limits.memory_bytes)
                return TestRunner(runtime, module, records, manifest, limits).run_all(names)
        finally:
            records.close()
