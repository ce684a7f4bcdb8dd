"""Reports: merged runs, lcov, the HTML page, and functions that have no line information."""

from __future__ import annotations

from pathlib import Path

import pytest
import wasmtime

from circuit_host.coverage import CoverageReport, Instrumented, LineTable, instrument, merge_counters, read_counters

from .conftest import validator, wat
from .test_instrument import KNOWN


def run(instrumented: Instrumented, export: str, *args: int) -> bytes:
    """One call in a fresh store (as each test runs), returning that run's counters."""
    config = wasmtime.Config()
    config.wasm_multi_memory = True
    engine = wasmtime.Engine(config)
    store = wasmtime.Store(engine)
    instance = wasmtime.Instance(store, wasmtime.Module(engine, instrumented.wasm), [])
    func = instance.exports(store)[export]
    assert isinstance(func, wasmtime.Func)
    func(store, *args)
    return read_counters(store, instance, instrumented.counter_count)


@pytest.fixture(scope="module")
def zig_report(zig_debug: tuple[Path, bytes]) -> tuple[Path, CoverageReport]:
    source, wasm = zig_debug
    instrumented = instrument(wasm, validator())
    runs = [run(instrumented, "classify", 5), run(instrumented, "classify", 100001), run(instrumented, "classify", 0)]
    merged = merge_counters(runs, instrumented.counter_count)
    return source, CoverageReport.from_counters(instrumented, merged, LineTable.from_wasm(wasm, validator()))


def parse_lcov(text: str) -> list[dict[str, list[str]]]:
    """Records of an lcov tracefile, each a map from key (SF, DA, ...) to its values in order."""
    assert text.endswith("end_of_record\n")
    records: list[dict[str, list[str]]] = []
    current: dict[str, list[str]] = {}
    for line in text.splitlines():
        if line == "end_of_record":
            records.append(current)
            current = {}
            continue
        key, _, value = line.partition(":")
        assert key in {"TN", "SF", "FN", "FNDA", "FNF", "FNH", "DA", "LF", "LH"}, line
        current.setdefault(key, []).append(value)
    assert current == {}
    return records


def test_merged_runs_count_how_many_runs_reached_each_line(zig_report: tuple[Path, CoverageReport]) -> None:
    source, report = zig_report
    sample = next(cov for path, cov in report.files.items() if Path(path).name == source.name)
    assert sample.lines == {1: 3, 2: 3, 3: 1, 5: 2, 6: 2, 7: 2, 8: 1, 10: 2, 13: 0, 14: 0}
    assert (sample.lines_found, sample.lines_hit) == (10, 8)
    assert merge_counters([b"\x01\x00\x01", b"\x01\x01\x00\xff"], 3) == [2, 1, 1]
    with pytest.raises(ValueError, match="2 counters, 3 expected"):
        merge_counters([b"\x01\x00"], 3)


def test_lcov_records_are_well_formed_and_add_up(zig_report: tuple[Path, CoverageReport]) -> None:
    source, report = zig_report
    records = parse_lcov(report.to_lcov(test_name="unit"))
    assert [r["SF"] for r in records] == [[path] for path in report.files]
    for record in records:
        assert record["TN"] == ["unit"]
        lines = [tuple(map(int, value.split(","))) for value in record["DA"]]
        assert [line for line, _ in lines] == sorted({line for line, _ in lines})
        assert record["LF"] == [str(len(lines))]
        assert record["LH"] == [str(sum(1 for _, hits in lines if hits))]
        functions = [value.split(",", 1) for value in record.get("FN", [])]
        counts = {name: int(hits) for hits, name in (value.split(",", 1) for value in record.get("FNDA", []))}
        assert set(counts) == {name for _, name in functions}
        assert record["FNF"] == [str(len(functions))]
        assert record["FNH"] == [str(sum(1 for hits in counts.values() if hits))]
    sample = next(r for r in records if Path(r["SF"][0]).name == source.name)
    assert "3,1" in sample["DA"] and "13,0" in sample["DA"] and "1,3" in sample["DA"]
    assert sample["FN"] == ["13,sample.never_called", "1,sample.classify"]
    assert sample["FNDA"] == ["0,sample.never_called", "3,sample.classify"]
    assert (sample["LF"], sample["LH"]) == (["10"], ["8"])


def test_table_lists_each_file_and_the_total(zig_report: tuple[Path, CoverageReport]) -> None:
    _, report = zig_report
    table = report.to_table()
    for path, cov in report.files.items():
        assert any(line.startswith(path) and line.endswith(f"{cov.percent:.1f}%") for line in table.splitlines())
    assert table.splitlines()[-1].startswith("total")


def test_html_is_one_page_with_every_file_and_its_source(zig_report: tuple[Path, CoverageReport]) -> None:
    source, report = zig_report
    page = report.to_html(sources={path: source.read_text() for path in report.files if path.endswith("sample.zig")})
    assert page.startswith("<!DOCTYPE html>") and page.rstrip().endswith("</html>")
    for path in report.files:
        assert f">{path}</a>" in page and f"{path} (" in page
    assert "<span class='m'>   14    0     return y * 7;</span>" in page
    assert "<span class='h'>    3    1         return 3;</span>" in page
    assert "<span class='n'>    4          }</span>" in page
    assert "<span class='h'>    2    3     if (x &gt; 100000) {</span>" in page
    assert "src=" not in page and "<link" not in page and "<script" not in page


def test_functions_without_line_info_are_listed_not_dropped() -> None:
    instrumented = instrument(wat(KNOWN), validator())
    report = CoverageReport.from_counters(instrumented, run(instrumented, "abs", -3), LineTable())
    assert report.files == {}
    assert [(f.name, f.hits, f.file) for f in report.functions_without_lines] == [("abs", 1, None), ("count", 0, None)]
    table = report.to_table()
    assert "functions without line information (2):" in table
    assert "  abs (entered)" in table and "  count (not entered)" in table
    assert "abs: entered" in report.to_html()
    assert report.to_lcov() == ""
    assert report.percent == 0.0  # nothing measured: a module built without DWARF cannot pass a coverage gate


def test_restricting_to_the_circuit_sources(zig_report: tuple[Path, CoverageReport]) -> None:
    source, report = zig_report
    own = report.restricted_to(lambda path: Path(path).name == source.name)
    assert list(own.files) == [next(p for p in report.files if Path(p).name == source.name)]
    assert {f.name for f in own.functions} == {"sample.classify", "sample.never_called"}
    assert round(own.percent) == 80


def test_counters_shorter_than_the_blocks_are_refused() -> None:
    instrumented = instrument(wat(KNOWN), validator())
    with pytest.raises(ValueError, match="counters for"):
        CoverageReport.from_counters(instrumented, b"\x01", LineTable())
