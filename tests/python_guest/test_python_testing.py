"""``circuit test`` on a Python circuit: the same tests natively (pytest, coverage.py) and in the sandbox.

``testing_circuit/`` holds a small circuit and tests that end in every possible outcome, so one
componentize-py build shows that both runs agree test by test and line by line.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from circuit_host.errors import Rejected
from circuit_host.sandbox.runtime import Runtime
from circuit_host.testing import run_native_tests

HERE = Path(__file__).resolve().parent
ROOT = HERE.parents[1]
EXPECTED = {
    "test_passes_and_fires_the_trigger": "pass",
    "test_passes_with_a_mocked_callout": "pass",
    "test_passes_with_fresh_limits": "pass",
    "test_passes_because_earlier_tests_rolled_back": "pass",
    "test_fails_on_an_assertion": "fail",
    "test_fails_on_an_unmatched_callout": "fail",
    "test_fails_through_testing_fail": "fail",
    "test_errors_on_a_governor_limit": "error",
    "test_fails_on_an_unexpected_exception": "fail",
}


@pytest.fixture(scope="module")
def circuit_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    target = tmp_path_factory.mktemp("python-tests") / "testing_circuit"
    shutil.copytree(HERE / "testing_circuit", target)
    return target


@pytest.fixture(scope="module")
def cache(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("cache")


@pytest.fixture(scope="module")
def cli_report(circuit_dir: Path, cache: Path) -> dict[str, Any]:
    """``circuit test DIR --json --coverage``: one build of the test component, both runs."""
    done = subprocess.run(
        [
            sys.executable,
            "-m",
            "circuit_host.cli",
            "--cache-dir",
            str(cache),
            "test",
            str(circuit_dir),
            "--json",
            "--coverage",
            "--html",
            str(circuit_dir / "coverage.html"),
            "--lcov",
            str(circuit_dir / "coverage.lcov"),
        ],
        capture_output=True,
        text=True,
        timeout=600,
        cwd=ROOT,
    )
    assert done.returncode == 1, done.stderr[-3000:]  # some tests fail on purpose
    report: dict[str, Any] = json.loads(done.stdout)
    return report


def statuses(report: dict[str, Any]) -> dict[str, str]:
    return {test["name"]: test["status"] for test in report["tests"]}


def messages(report: dict[str, Any]) -> dict[str, str]:
    return {test["name"]: test["message"] or "" for test in report["tests"]}


def test_native_and_sandboxed_runs_agree_test_by_test(cli_report: dict[str, Any]) -> None:
    assert list(statuses(cli_report["native"])) == list(EXPECTED)  # declaration order in both
    assert statuses(cli_report["native"]) == EXPECTED
    assert statuses(cli_report) == EXPECTED
    assert not cli_report["passed"] and not cli_report["native"]["passed"]


def test_failures_say_why_in_both_runs(cli_report: dict[str, Any]) -> None:
    for report in (cli_report, cli_report["native"]):
        said = messages(report)
        assert "five visits is only warm" in said["test_fails_on_an_assertion"]
        assert "unmatched callout" in said["test_fails_on_an_unmatched_callout"]
        assert "unmocked.example" in said["test_fails_on_an_unmatched_callout"]
        assert "explicit failure" in said["test_fails_through_testing_fail"]
        assert "limit exceeded: queries" in said["test_errors_on_a_governor_limit"]
        assert "KeyError" in said["test_fails_on_an_unexpected_exception"]
    # the sandbox has no files at run time, yet names the failing line (captured at build time)
    sandbox = messages(cli_report)["test_fails_on_an_assertion"]
    assert "tests.py:" in sandbox and 'assert tier(5) == "hot"' in sandbox


def test_both_runs_report_the_same_governor_usage(cli_report: dict[str, Any]) -> None:
    for report in (cli_report, cli_report["native"]):
        by_name = {test["name"]: test for test in report["tests"]}
        fresh = by_name["test_passes_with_fresh_limits"]
        assert fresh["usage"]["queries"]["used"] == 15
        assert fresh["test_usage"]["queries"]["used"] == 1
        assert by_name["test_errors_on_a_governor_limit"]["usage"]["queries"]["limit"] == 20  # circuit.toml
        trigger = by_name["test_passes_and_fires_the_trigger"]["usage"]
        assert (trigger["dml_statements"]["used"], trigger["dml_rows"]["used"]) == (1, 3)


def test_coverage_is_the_same_figure_natively_and_in_the_sandbox(cli_report: dict[str, Any]) -> None:
    native, sandbox = cli_report["native"]["coverage"], cli_report["coverage"]
    assert sandbox["files"] == native["files"] == {"circuit.py": 90.0}
    assert (sandbox["lines_found"], sandbox["lines_hit"]) == (native["lines_found"], native["lines_hit"]) == (10, 9)


def test_coverage_files_show_the_circuits_own_source(circuit_dir: Path, cli_report: dict[str, Any]) -> None:
    page = (circuit_dir / "coverage.html").read_text()
    assert "circuit.py" in page and "this line is never covered" in page  # the source itself, not just names
    lcov = (circuit_dir / "coverage.lcov").read_text()
    assert "SF:circuit.py" in lcov and "LH:9" in lcov and "LF:10" in lcov


def test_a_test_component_is_refused_by_a_production_runtime(
    circuit_dir: Path, cache: Path, cli_report: dict[str, Any]
) -> None:
    wasm = circuit_dir / "build" / "testing_circuit_tests.wasm"
    with Runtime(cache) as production, pytest.raises(Rejected, match=r"circuit:script/testing@1\.0\.0"):
        production.load(wasm.read_bytes())


def test_native_run_reports_a_broken_tests_file(tmp_path: Path) -> None:
    (tmp_path / "circuit.py").write_text("X = 1\n")
    (tmp_path / "tests.py").write_text("import nonexistent_module_xyz\n\ndef test_x():\n    pass\n")
    with pytest.raises(Rejected, match="nonexistent_module_xyz"):
        run_native_tests(tmp_path)


def test_native_run_leaves_no_files_in_the_circuit_directory(tmp_path: Path) -> None:
    (tmp_path / "circuit.py").write_text("def f():\n    return 1\n")
    (tmp_path / "tests.py").write_text("from circuit import f\n\ndef test_f():\n    assert f() == 1\n")
    report = run_native_tests(tmp_path, coverage=True)
    assert [(r.name, r.status) for r in report.results] == [("test_f", "pass")]
    assert report.coverage is not None and report.coverage.percent == 100.0
    assert sorted(p.name for p in tmp_path.iterdir()) == ["circuit.py", "tests.py"]


def test_the_native_run_imports_the_circuit_even_when_its_tests_do_not(tmp_path: Path) -> None:
    """A before_insert test failed natively with 0% coverage and passed in the sandbox at 100%: the
    native run never imported circuit.py, so its triggers were never registered (issue 11, also found)."""
    (tmp_path / "circuit.toml").write_text(
        (HERE / "testing_circuit" / "circuit.toml").read_text().replace('name = "testing_cases"', 'name = "imported"')
    )
    (tmp_path / "circuit.py").write_text(
        "from circuit_sdk import TriggerContext, trigger\n\n\n"
        '@trigger("Contact", "before_insert")\n'
        "def set_tier(ctx: TriggerContext) -> None:\n"
        "    for contact in ctx.new:\n"
        '        contact["Tier__c"] = "set by the trigger"\n'
    )
    (tmp_path / "tests.py").write_text(
        "from circuit_sdk import records, testing\n\n\n"
        "def test_the_trigger_runs() -> None:\n"
        '    ids = testing.create_records("Contact", count=1, fields={"LastName": "T"})\n'
        '    rows = records.query("SELECT Tier__c FROM Contact WHERE Id IN :ids", ids=ids)\n'
        '    assert rows[0]["Tier__c"] == "set by the trigger"\n'
    )
    report = run_native_tests(tmp_path, coverage=True)
    assert [(r.name, r.status) for r in report.results] == [("test_the_trigger_runs", "pass")], report.results
    assert report.coverage is not None and report.coverage.percent == 100.0
