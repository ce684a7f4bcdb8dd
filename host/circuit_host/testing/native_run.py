"""``python -m circuit_host.testing.native_run DIR --out REPORT.json``: a Python circuit's tests
under pytest, in this (separate) process, with coverage.py measuring the circuit's own files.

``circuit test`` starts this as a subprocess: the author's code then runs natively without
touching the host process's modules or state. Coverage counts the lines that can run inside
the circuit's functions (``circuit_sdk._coverage.function_lines``), the same lines the
sandboxed run counts, so the two figures are comparable.
"""

from __future__ import annotations

import argparse
import importlib
import json
import os
import sys
from pathlib import Path
from typing import Any

import pytest

import coverage

from ..resources import python_sdk_dir
from .pytest_plugin import MESSAGE_PROPERTY, STATUS_PROPERTY, TEST_USAGE_PROPERTY, USAGE_PROPERTY

PLUGIN = "circuit_host.testing.pytest_plugin"


class Collector:
    """Collects one result per test: the call's outcome, or the setup/teardown failure."""

    def __init__(self) -> None:
        self.results: dict[str, dict[str, Any]] = {}

    def pytest_runtest_logreport(self, report: pytest.TestReport) -> None:
        name = report.nodeid.rsplit("::", 1)[-1]
        fresh: dict[str, Any] = {
            "name": name,
            "status": "pass",
            "message": None,
            "duration_ms": 0.0,
            "usage": {},
            "test_usage": None,
        }
        entry = self.results.setdefault(name, fresh)
        entry["duration_ms"] = round(entry["duration_ms"] + report.duration * 1000, 3)
        properties = dict(report.user_properties)
        for key, field in ((USAGE_PROPERTY, "usage"), (TEST_USAGE_PROPERTY, "test_usage")):
            if key in properties:
                entry[field] = properties[key]
        if report.failed and entry["status"] == "pass":
            crash = getattr(report.longrepr, "reprcrash", None)
            message = crash.message if crash is not None else str(report.longrepr).strip().splitlines()[-1]
            entry["status"] = properties.get(STATUS_PROPERTY, "error")
            entry["message"] = properties.get(MESSAGE_PROPERTY, message)


def run(circuit_dir: Path, names: list[str], measure: bool) -> dict[str, Any]:
    tests = circuit_dir / "tests.py"
    cov = coverage.Coverage(data_file=None, source=[str(circuit_dir)], config_file=False) if measure else None
    if cov is not None:
        cov.start()
    collector = Collector()
    targets = [f"{tests}::{name}" for name in names] if names else [str(tests)]
    arguments = [*targets, "-p", PLUGIN, f"--circuit-dir={circuit_dir}", "-q", "-p", "no:cacheprovider"]
    # The circuit's directory alone: no ini file or conftest.py from the folders around it.
    arguments += ["--rootdir", str(circuit_dir), "-c", os.devnull, f"--confcutdir={circuit_dir}"]
    arguments += ["-o", "python_files=tests.py", "-o", "python_functions=test_*"]
    code = pytest.main(arguments, plugins=[collector])
    report: dict[str, Any] = {"exit_code": int(code), "results": list(collector.results.values())}
    if cov is not None:
        cov.stop()
        report["coverage"] = _coverage(cov, circuit_dir)
    return report


def _coverage(cov: coverage.Coverage, circuit_dir: Path) -> dict[str, dict[str, list[int]]]:
    sdk = importlib.import_module("circuit_sdk._coverage")  # the SDK is on sys.path
    circuit_files, function_lines = sdk.circuit_files, sdk.function_lines
    data = cov.get_data()
    measured = {os.path.abspath(path): path for path in data.measured_files()}
    files: dict[str, dict[str, list[int]]] = {}
    for path, relative in circuit_files(str(circuit_dir)).items():
        lines = function_lines(Path(path).read_text(encoding="utf-8"), path)
        executed = set(data.lines(measured[path]) or ()) if path in measured else set()
        files[relative] = {"lines": sorted(lines), "hit": sorted(lines & executed)}
    return files


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="circuit_host.testing.native_run")
    parser.add_argument("dir", type=Path)
    parser.add_argument("--out", type=Path, required=True)
    parser.add_argument("--name", action="append", default=[])
    parser.add_argument("--no-coverage", action="store_true")
    args = parser.parse_args(argv)
    sys.dont_write_bytecode = True  # leave no __pycache__ in the author's directory
    sys.path.insert(0, str(python_sdk_dir()))
    report = run(args.dir.resolve(), args.name, not args.no_coverage)
    args.out.write_text(json.dumps(report))
    return 0


if __name__ == "__main__":
    sys.exit(main())
