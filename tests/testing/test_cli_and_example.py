"""`circuit test DIR`, run as a real subprocess: Virtual LPR's own tests pass; a failing suite exits 1."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

from .conftest import EXAMPLES, LAB

VLPR_TESTS = [
    "high_intent_lead_scores_a",
    "bulk_insert_of_200_uses_fewer_than_10_callouts",
    "census_mock_is_called_exactly_once",
    "census_failure_scores_without_enrichment",
    "low_intent_lead_is_grade_d_without_task",
    "messy_numbers_count_as_truncated_and_non_negative",
    "score_of_an_empty_contact_is_zero",
    "grade_a_batch_enqueues_one_enrichment_job",
    "enrichment_job_stores_household_income",
    "a_schedule_tick_enqueues_enrichment_for_unenriched_grade_a",
]


def circuit_test(tmp_path: Path, directory: Path, *args: str) -> subprocess.CompletedProcess[str]:
    command = [sys.executable, "-m", "circuit_host.cli", "--cache-dir", str(tmp_path / "cache"), "test"]
    return subprocess.run(
        [*command, str(directory), "--out", str(tmp_path / "out"), *args],
        capture_output=True,
        text=True,
        timeout=300,
    )


def test_virtual_lpr_tests_pass(tmp_path: Path) -> None:
    done = circuit_test(tmp_path, EXAMPLES / "virtual_lpr", "--json")
    report = json.loads(done.stdout)
    assert done.returncode == 0, report
    assert [t["name"] for t in report["tests"]] == VLPR_TESTS
    assert report["counts"] == {"pass": len(VLPR_TESTS), "fail": 0, "error": 0}
    bulk = report["tests"][1]
    assert bulk["test_usage"]["callouts"]["used"] == 1  # one census callout for 200 contacts
    assert bulk["test_usage"]["dml_rows"]["used"] == 400  # the insert and the circuit's update
    assert bulk["usage"]["callouts"]["used"] == 0  # stopTest restored the outer counters


def test_a_failing_suite_exits_1_and_names_the_failures(tmp_path: Path) -> None:
    done = circuit_test(tmp_path, LAB, "--name", "mock_sequence", "--name", "assert_message")
    assert done.returncode == 1, done.stderr
    assert "PASS  mock_sequence" in done.stdout
    assert "FAIL  assert_message" in done.stdout
    assert 'Grade: expected "A", got "B"' in done.stdout
    assert done.stdout.strip().endswith("1 passed, 1 failed, 0 errors")
    assert circuit_test(tmp_path, LAB, "--name", "mock_sequence").returncode == 0


def test_a_directory_without_tests_is_an_error(tmp_path: Path) -> None:
    done = circuit_test(tmp_path, EXAMPLES / "hello")
    assert done.returncode == 2
    assert "tests.zig does not exist" in done.stderr


def test_coverage_of_virtual_lpr_counts_only_the_circuits_own_lines(tmp_path: Path) -> None:
    lcov = tmp_path / "vlpr.lcov"
    html = tmp_path / "vlpr.html"
    ran = circuit_test(
        tmp_path, EXAMPLES / "virtual_lpr", "--json", "--coverage", "--lcov", str(lcov), "--html", str(html)
    )
    assert ran.returncode == 0, ran.stdout + ran.stderr
    coverage = json.loads(ran.stdout)["coverage"]
    assert [Path(p).name for p in coverage["files"]] == ["circuit.zig"]  # not tests.zig, the SDK or compiler_rt
    assert 75 <= coverage["percent"] < 100
    assert coverage["lines_hit"] < coverage["lines_found"]
    assert lcov.read_text().startswith("TN:virtual_lpr\nSF:") and "end_of_record" in lcov.read_text()
    assert "circuit.zig" in html.read_text()


def test_coverage_under_the_threshold_fails_the_run(tmp_path: Path) -> None:
    ran = circuit_test(tmp_path, EXAMPLES / "virtual_lpr", "--min-coverage", "99.9")
    assert ran.returncode == 1
    assert "under the required 99.9%" in ran.stdout
