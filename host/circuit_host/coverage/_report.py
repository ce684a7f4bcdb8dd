"""Counters joined with the line table: per-file line coverage, rendered as a table, lcov or one HTML page."""

from __future__ import annotations

import bisect
import html
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path

from ._dwarf import LineTable
from ._instrument import Function, Instrumented


@dataclass(frozen=True)
class FileCoverage:
    """Lines of one source file that have code, each with how many runs reached it (0 = never)."""

    path: str
    lines: dict[int, int]

    @property
    def lines_found(self) -> int:
        return len(self.lines)

    @property
    def lines_hit(self) -> int:
        return sum(1 for hits in self.lines.values() if hits)

    @property
    def percent(self) -> float:
        return _percent(self.lines_hit, self.lines_found)


@dataclass(frozen=True)
class FunctionCoverage:
    """A function, where its line info starts (None when it has none), and how many runs entered it."""

    index: int
    name: str
    file: str | None
    line: int | None
    hits: int


@dataclass(frozen=True)
class CoverageReport:
    files: dict[str, FileCoverage]
    functions: list[FunctionCoverage] = field(default_factory=list)

    @property
    def functions_without_lines(self) -> list[FunctionCoverage]:
        """Functions no line-table row points into: reported as such, never dropped."""
        return [f for f in self.functions if f.file is None]

    @property
    def lines_found(self) -> int:
        return sum(f.lines_found for f in self.files.values())

    @property
    def lines_hit(self) -> int:
        return sum(f.lines_hit for f in self.files.values())

    @property
    def percent(self) -> float:
        return _percent(self.lines_hit, self.lines_found)

    @classmethod
    def from_counters(
        cls, instrumented: Instrumented, counters: Sequence[int], line_table: LineTable
    ) -> CoverageReport:
        """Join counters (one run's bytes, or `merge_counters` totals) with the original module's line table.

        A line has code when some row of the table points into a function body; it is hit when one of those rows
        lies in a block whose counter is non-zero.
        """
        if len(counters) < len(instrumented.blocks):
            raise ValueError(f"{len(counters)} counters for {len(instrumented.blocks)} blocks")
        functions = sorted(instrumented.functions, key=lambda f: f.body_start)
        starts = [f.body_start for f in functions]
        block_starts: dict[int, list[int]] = {}
        first_block: dict[int, int] = {}
        for block in instrumented.blocks:
            block_starts.setdefault(block.func_index, []).append(block.code_offset)
            first_block.setdefault(block.func_index, block.index)

        def locate(address: int) -> tuple[Function, int] | None:
            i = bisect.bisect_right(starts, address) - 1
            if i < 0 or address >= functions[i].end:
                return None
            function = functions[i]
            offsets = block_starts[function.index]
            n = max(0, bisect.bisect_right(offsets, address) - 1)
            return function, first_block[function.index] + n

        lines: dict[str, dict[int, int]] = {}
        first_row: dict[int, tuple[str, int]] = {}
        for sequence in line_table.sequences:
            if not sequence or locate(sequence[0].address) is None:
                continue  # dead code the linker tombstoned (address -1 or 0)
            for row in sequence:
                if row.end_sequence or row.line <= 0:
                    continue
                found = locate(row.address)
                if found is None:
                    continue
                function, block_index = found
                per_file = lines.setdefault(row.file, {})
                per_file[row.line] = max(per_file.get(row.line, 0), counters[block_index])
                first_row.setdefault(function.index, (row.file, row.line))
        report_functions = []
        for function in instrumented.functions:
            where = first_row.get(function.index)
            hits = counters[first_block[function.index]] if function.index in first_block else 0
            report_functions.append(
                FunctionCoverage(
                    function.index, function.name, where[0] if where else None, where[1] if where else None, hits
                )
            )
        files = {path: FileCoverage(path, dict(sorted(lines[path].items()))) for path in sorted(lines)}
        return cls(files, report_functions)

    def restricted_to(self, keep: Callable[[str], bool]) -> CoverageReport:
        """The same report over the files `keep` accepts (e.g. the circuit's own sources, not the standard library)."""
        files = {path: cov for path, cov in self.files.items() if keep(path)}
        functions = [f for f in self.functions if f.file is None or keep(f.file)]
        return replace(self, files=files, functions=functions)

    def to_table(self) -> str:
        width = max([len("file"), len("total"), *(len(p) for p in self.files)])
        rows = [f"{'file':<{width}}  {'lines':>6}  {'hit':>6}  {'cover':>7}"]
        for cov in self.files.values():
            rows.append(f"{cov.path:<{width}}  {cov.lines_found:>6}  {cov.lines_hit:>6}  {cov.percent:>6.1f}%")
        rows.append(f"{'total':<{width}}  {self.lines_found:>6}  {self.lines_hit:>6}  {self.percent:>6.1f}%")
        missing = self.functions_without_lines
        if missing:
            rows.append("")
            rows.append(f"functions without line information ({len(missing)}):")
            rows.extend(f"  {f.name} ({'entered' if f.hits else 'not entered'})" for f in missing)
        return "\n".join(rows) + "\n"

    def to_lcov(self, test_name: str = "") -> str:
        """The lcov tracefile format (geninfo(1)): one record per source file."""
        out: list[str] = []
        for cov in self.files.values():
            out.append(f"TN:{_lcov_text(test_name)}")
            out.append(f"SF:{cov.path}")
            functions = [f for f in self.functions if f.file == cov.path and f.line is not None]
            out.extend(f"FN:{f.line},{_lcov_text(f.name)}" for f in functions)
            out.extend(f"FNDA:{f.hits},{_lcov_text(f.name)}" for f in functions)
            out.append(f"FNF:{len(functions)}")
            out.append(f"FNH:{sum(1 for f in functions if f.hits)}")
            out.extend(f"DA:{line},{hits}" for line, hits in cov.lines.items())
            out.append(f"LF:{cov.lines_found}")
            out.append(f"LH:{cov.lines_hit}")
            out.append("end_of_record")
        return "\n".join(out) + "\n" if out else ""

    def to_html(self, sources: Mapping[str, str] | None = None, title: str = "Coverage") -> str:
        """One self-contained page. Source text comes from `sources`, else from disk when the path is readable."""
        parts = [
            "<!DOCTYPE html>",
            f"<html><head><meta charset='utf-8'><title>{html.escape(title)}</title><style>{_CSS}</style></head><body>",
            f"<h1>{html.escape(title)}</h1>",
            f"<p>{self.lines_hit} of {self.lines_found} lines ({self.percent:.1f}%)</p>",
            "<table><tr><th>file</th><th>lines</th><th>hit</th><th>cover</th></tr>",
        ]
        for n, cov in enumerate(self.files.values()):
            parts.append(
                f"<tr><td><a href='#f{n}'>{html.escape(cov.path)}</a></td><td>{cov.lines_found}</td>"
                f"<td>{cov.lines_hit}</td><td>{cov.percent:.1f}%</td></tr>"
            )
        parts.append("</table>")
        missing = self.functions_without_lines
        if missing:
            parts.append("<h2>Functions without line information</h2><ul>")
            parts.extend(f"<li>{html.escape(f.name)}: {'entered' if f.hits else 'not entered'}</li>" for f in missing)
            parts.append("</ul>")
        for n, cov in enumerate(self.files.values()):
            parts.append(f"<h2 id='f{n}'>{html.escape(cov.path)} ({cov.percent:.1f}%)</h2><pre>")
            text = sources.get(cov.path) if sources is not None else _read_source(cov.path)
            source_lines = text.splitlines() if text is not None else []
            # Only lines of the source or of the table: a row may claim line 2**63, and the gap is never walked.
            for line in sorted(set(range(1, len(source_lines) + 1)) | cov.lines.keys()):
                hits = cov.lines.get(line)
                css = "n" if hits is None else ("h" if hits else "m")
                body = html.escape(source_lines[line - 1]) if line <= len(source_lines) else ""
                if text is None and hits is None:
                    continue
                parts.append(f"<span class='{css}'>{line:>5} {'' if hits is None else hits:>4} {body}</span>")
            parts.append("</pre>")
        parts.append("</body></html>")
        return "\n".join(parts) + "\n"


_CSS = (
    "body{font-family:sans-serif;margin:2em}table{border-collapse:collapse}td,th{padding:2px 8px;text-align:left}"
    "pre{font-size:13px}pre span{display:block}.h{background:#dfd}.m{background:#fdd}.n{color:#777}"
)


def _percent(hit: int, found: int) -> float:
    return 100.0 * hit / found if found else 0.0  # no line info measures nothing, so it cannot pass a gate


def _lcov_text(text: str) -> str:
    return text.replace("\n", " ").replace("\r", " ")


def _read_source(path: str) -> str | None:
    try:
        return Path(path).read_text(encoding="utf-8", errors="replace")
    except OSError:
        return None
