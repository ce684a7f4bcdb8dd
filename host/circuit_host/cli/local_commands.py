"""Commands that work on local files: build, test, run, query, schema."""

from __future__ import annotations

import argparse
import json
import sys
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

from ..circuitdb import CircuitDB, open_store
from ..circuitdb.manifest import parse_schema, read_schema
from ..connectors.callout_destinations import Network, parse_networks
from ..connectors.http_client import HttpConnector
from ..errors import CircuitError, QueryError, Rejected
from ..execution.callout_policy import HostPattern
from ..execution.executions import ExecutionOptions, ExecutionRecord, Executor
from ..execution.limits import LimitsProfile
from ..execution.trigger_events import run_trigger_event
from ..sandbox.runtime import Runtime
from ..settings import HostSettings
from ..soql.parser import parse
from ..testing.runner import TestReport
from ..triggers import TriggerBinding, TriggerRegistry

MAX_EVENT_FILE_BYTES = 64 * 1024 * 1024


def _read_event(path: Path) -> Any:
    try:
        if path.stat().st_size > MAX_EVENT_FILE_BYTES:
            raise Rejected(f"event file {path} is larger than {MAX_EVENT_FILE_BYTES} bytes")
        return json.loads(path.read_text(encoding="utf-8"))
    except OSError as exc:
        raise Rejected(f"cannot read event file {path}: {exc.strerror}") from None
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise Rejected(f"event file {path} is not valid JSON: {exc}") from None


def _print_record(record: ExecutionRecord) -> None:
    print(f"status: {record.status}")
    if record.error:
        print(f"error: {record.error['kind']}: {record.error['message']}")
    if record.output is not None:
        print(f"output: {json.dumps(record.to_json()['output'], sort_keys=True)}")
    if record.logs:
        print("log:")
        for entry in record.logs:
            print(f"  [{entry.level}] {entry.message}")
    busy = {name: u for name, u in record.usage.items() if u.used}
    print("usage: " + ", ".join(f"{name} {u.used}/{u.limit}" for name, u in busy.items()))
    print(f"duration: {record.duration_ms:.1f} ms, committed: {'yes' if record.committed else 'no'}")


def _rejected_record(message: str) -> dict[str, Any]:
    return {
        "status": "rejected",
        "output": None,
        "error": {"kind": "rejected", "message": message},
        "usage": {},
        "logs": [],
        "duration_ms": 0.0,
        "committed": False,
    }


def _trigger_registry(runtime: Runtime, specs: list[str], memory_cap: int) -> TriggerRegistry:
    """Parse ``--trigger Object.operation=MODULE`` options into a registry, in the order given."""
    registry = TriggerRegistry()
    for order, spec in enumerate(specs):
        target, sep, path = spec.partition("=")
        object_name, dot, operation = target.partition(".")
        if not (sep and dot and object_name and path):
            raise Rejected(f"--trigger {spec!r} must look like Object.operation=MODULE")
        module = runtime.load_file(Path(path), memory_cap)
        registry.register(
            "default", TriggerBinding(f"{Path(path).stem}#{order}", object_name, operation, module, order)
        )
    return registry


def _open_records(target: str | None, tenant: str, must_exist: bool = False) -> CircuitDB:
    """The records store: a SQLite path or URL, a PostgreSQL URL, or a temporary SQLite file.

    ``must_exist`` (commands that only read) refuses a SQLite file that is not there, instead of
    creating an empty store and answering from it: a typo in ``--db`` must not look like no rows.
    """
    if must_exist:
        if target is None:
            raise Rejected("--db is required: which records store to read")
        path = target.removeprefix("sqlite:///") if "://" not in target or target.startswith("sqlite:") else None
        if path is not None and not Path(path).is_file():
            raise Rejected(f"no records store at {path} (run or apply a schema to create one)")
    try:
        return open_store(target, tenant)
    except CircuitError:
        raise
    except Exception as exc:  # a bad URL, an unreachable server: say which, don't trace back
        raise Rejected(f"cannot open the records store {target!r}: {type(exc).__name__}: {exc}") from None


def _manifest_beside(module: Path) -> Path | None:
    """``circuit.toml`` next to the module or in its parent (``circuit build`` writes ``DIR/zig-out``)."""
    for folder in (module.parent, module.parent.parent):
        if (folder / "circuit.toml").is_file():
            return folder / "circuit.toml"
    return None


def _networks(texts: list[str]) -> tuple[Network, ...]:
    try:
        return parse_networks(texts)
    except ValueError as exc:
        raise Rejected(f"--allow-network: {exc}") from None


def cmd_run(args: argparse.Namespace, settings: HostSettings) -> int:
    try:
        limits = LimitsProfile.from_json_file(args.limits) if args.limits else LimitsProfile()
        allowed = tuple(HostPattern.parse(p) for p in args.allow_host)
        networks = _networks(args.allow_network)
        event = _read_event(args.event)
        with Runtime(cache_dir=settings.cache_dir) as runtime:
            module = runtime.load_file(args.module, limits.memory_bytes)
            registry = _trigger_registry(runtime, args.trigger, limits.memory_bytes)
            records = _open_records(args.db, args.tenant)
            http = HttpConnector(allowed_networks=networks)
            try:
                manifest = args.manifest or _manifest_beside(args.module)
                if manifest is not None:
                    records.apply_schema(read_schema(manifest))
                executor = Executor(runtime, records, http, triggers=registry)
                options = ExecutionOptions(limits=limits, allowed_hosts=allowed)
                if isinstance(event, dict) and event.get("kind") == "trigger":
                    record = run_trigger_event(executor, module, event, options)
                else:
                    record = executor.run(module, event, options)
            finally:
                http.close()
                records.close()
    except Rejected as exc:
        if args.json:
            print(json.dumps(_rejected_record(str(exc))))
        else:
            print(f"status: rejected\nerror: {exc}", file=sys.stderr)
        return 2
    if args.json:
        print(json.dumps(record.to_json()))
    else:
        _print_record(record)
    return 0 if record.status == "ok" else 1


def cmd_query(args: argparse.Namespace, settings: HostSettings) -> int:
    records = _open_records(args.db, args.tenant, must_exist=True)
    try:
        transaction = records.begin()
        try:
            result = transaction.query(args.soql, {}, max_rows=args.max_rows)
        finally:
            transaction.rollback()
            transaction.close()
    except QueryError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    finally:
        records.close()
    if parse(args.soql).count:
        print(json.dumps({"count": result.total_size}) if args.json else f"count: {result.total_size}")
        return 0
    rows = result.records[: args.max_rows]
    if args.json:
        print(json.dumps(rows, default=str))
        return 0
    if not rows:
        print("(0 rows)")
        return 0
    columns = list(dict.fromkeys(key for row in rows for key in row))
    widths = {c: max(len(c), *(len(str(row.get(c, ""))) for row in rows)) for c in columns}
    print("  ".join(c.ljust(widths[c]) for c in columns))
    for row in rows:
        print("  ".join(str(row.get(c, "")).ljust(widths[c]) for c in columns))
    print(f"({len(rows)} rows)")
    return 0


def cmd_schema_apply(args: argparse.Namespace, settings: HostSettings) -> int:
    records = _open_records(args.db, args.tenant)
    try:
        records.apply_schema(read_schema(args.manifest))
    finally:
        records.close()
    print(f"applied the schema of {args.manifest}")
    return 0


def cmd_schema_add_field(args: argparse.Namespace, settings: HostSettings) -> int:
    entry: dict[str, Any] = {"object": args.object, "name": args.field, "type": args.type}
    for flag in ("required", "unique", "external_id"):
        if getattr(args, flag):
            entry[flag] = True
    for option in ("length", "precision", "scale"):
        if getattr(args, option) is not None:
            entry[option] = getattr(args, option)
    if args.values:
        entry["values"] = [v.strip() for v in args.values.split(",")]
    if args.reference_to:
        entry["reference_to"] = args.reference_to
    records = _open_records(args.db, args.tenant)
    try:
        records.apply_schema(parse_schema({"schema": {"fields": [entry]}}, "command line"))
    finally:
        records.close()
    print(f"added {args.object}.{args.field} ({args.type})")
    return 0


def cmd_schema_show(args: argparse.Namespace, settings: HostSettings) -> int:
    records = _open_records(args.db, args.tenant, must_exist=True)
    try:
        definition = records.schema.object(args.object)
    finally:
        records.close()
    if definition is None:
        print(f"error: no object {args.object!r}", file=sys.stderr)
        return 1
    print(f"{definition.name} (id prefix {definition.prefix})")
    for field in definition.fields:
        flags = [f for f in ("required", "unique", "external_id", "system") if getattr(field, f)]
        extra = f" -> {', '.join(field.reference_to)}" if field.reference_to else ""
        print(f"  {field.name:<28} {field.type.value:<10}{extra} {' '.join(flags)}".rstrip())
    return 0


def cmd_build(args: argparse.Namespace, settings: HostSettings) -> int:
    from ..bundles import pack_bundle
    from ..toolchain.python_build import build_python_circuit, build_python_tests, is_python_circuit, vendor_declared
    from ..toolchain.zig_build import build_circuit, build_tests

    manifest = args.dir / "circuit.toml"
    tests: Path | None = None
    if is_python_circuit(args.dir):
        directory = args.dir.resolve()
        out_dir = args.out.resolve() if args.out is not None else directory / "build"
        dependencies = vendor_declared(directory, out_dir)
        with ThreadPoolExecutor(max_workers=2) as pool:  # two componentize-py processes side by side
            module = pool.submit(build_python_circuit, directory, out_dir / f"{directory.name}.wasm", dependencies)
            test_module = None
            if manifest.is_file() and (directory / "tests.py").is_file():
                out = out_dir / f"{directory.name}_tests.wasm"
                test_module = pool.submit(build_python_tests, directory, out, dependencies)
            output = module.result()
            tests = test_module.result() if test_module is not None else None
    else:
        output = build_circuit(args.dir, args.out)
        if manifest.is_file() and (args.dir / "tests.zig").is_file():
            tests = build_tests(args.dir, args.out)
    if manifest.is_file():
        print(f"bundle: {pack_bundle(manifest, output, output.parent, tests)}")
    print(output)
    return 0


def _print_results(title: str | None, report: TestReport) -> None:
    if title is not None:
        print(f"== {title}")
    for result in report.results:
        print(f"{result.status.upper():<5} {result.name} ({result.duration_ms:.1f} ms)")
        if result.message:
            print(f"      {result.message}")
    counts = report.counts()
    print(f"{counts['pass']} passed, {counts['fail']} failed, {counts['error']} errors")


def cmd_test(args: argparse.Namespace, settings: HostSettings) -> int:
    from ..testing import run_circuit_tests

    measure = args.coverage or args.lcov is not None or args.html is not None or args.min_coverage is not None
    report = run_circuit_tests(args.dir, args.out, settings.cache_dir, names=args.name or None, coverage=measure)
    covered = report.coverage
    enough = covered is None or args.min_coverage is None or covered.percent >= args.min_coverage
    if report.native is not None and report.native.coverage is not None and args.min_coverage is not None:
        enough = enough and report.native.coverage.percent >= args.min_coverage
    if covered is not None:
        if args.lcov is not None:
            args.lcov.write_text(covered.to_lcov(args.dir.name))
        if args.html is not None:
            # Python circuits report paths relative to the circuit directory
            relative = {name: args.dir / name for name in covered.files if not Path(name).is_absolute()}
            sources = {name: path.read_text(encoding="utf-8") for name, path in relative.items() if path.is_file()}
            args.html.write_text(covered.to_html(sources or None))
    if args.json:
        print(json.dumps(report.to_json(), default=str))
        return 0 if report.passed and enough else 1
    if report.native is not None:
        _print_results("native (pytest, coverage.py)", report.native)
        if report.native.coverage is not None:
            print(report.native.coverage.to_table())
        _print_results("sandbox (wasmtime)", report)
    else:
        _print_results(None, report)
    if covered is not None:
        print(covered.to_table())
        if not enough:
            print(f"coverage {covered.percent:.1f}% is under the required {args.min_coverage}%")
    return 0 if report.passed and enough else 1


def register(sub: Any) -> None:
    build = sub.add_parser("build", help="compile a circuit directory to .wasm")
    build.add_argument("dir", type=Path)
    build.add_argument(
        "--out", type=Path, default=None, help="output directory (default DIR/zig-out, DIR/build for Python)"
    )
    build.set_defaults(func=cmd_build)

    test = sub.add_parser(
        "test",
        help="run DIR's tests (tests.zig in the sandbox; tests.py natively under pytest, then in the sandbox)",
    )
    test.add_argument("dir", type=Path)
    test.add_argument("--out", type=Path, default=None, help="where the test module goes (default DIR/zig-out)")
    test.add_argument("--name", action="append", default=[], help="run only this test (repeatable)")
    test.add_argument("--json", action="store_true", help="print one JSON report")
    test.add_argument("--coverage", action="store_true", help="measure line coverage of the circuit's own source")
    test.add_argument("--lcov", type=Path, default=None, help="write the coverage as an lcov file")
    test.add_argument("--html", type=Path, default=None, help="write the coverage as an HTML page")
    test.add_argument("--min-coverage", type=float, default=None, help="fail under this percentage (e.g. 75)")
    test.set_defaults(func=cmd_test)

    run = sub.add_parser("run", help="run one execution of a module")
    run.add_argument("module", type=Path, help=".wasm (or .wat) module")
    run.add_argument("--event", type=Path, required=True, help="event JSON file")
    run.add_argument(
        "--db", default=None, help="records store: SQLite path or URL, or postgresql:// URL (default: temp)"
    )
    run.add_argument(
        "--manifest", type=Path, default=None, help="circuit.toml whose schema to apply (default: found beside MODULE)"
    )
    run.add_argument("--limits", type=Path, default=None, help="JSON file with limit overrides")
    run.add_argument(
        "--allow-host", action="append", default=[], metavar="PATTERN", help="scheme://host[:port] callouts may reach"
    )
    run.add_argument(
        "--allow-network",
        action="append",
        default=[],
        metavar="CIDR",
        help="private network callouts may connect to (refused by default), e.g. 127.0.0.0/8",
    )
    run.add_argument(
        "--trigger",
        action="append",
        default=[],
        metavar="OBJECT.OPERATION=MODULE",
        help="register a trigger circuit fired by the execution's DML (repeatable; runs in the order given)",
    )
    run.add_argument("--json", action="store_true", help="print exactly one JSON object")
    run.set_defaults(func=cmd_run)

    query = sub.add_parser("query", help="run a SOQL query against a records file (read-only)")
    query.add_argument("soql")
    query.add_argument("--db", required=True, help="SQLite path or URL, or postgresql:// URL")
    query.add_argument(
        "--json", action="store_true", help='print a JSON array of row objects ({"count": n} for COUNT())'
    )
    query.add_argument("--max-rows", type=int, default=50_000)
    query.set_defaults(func=cmd_query)

    schema = sub.add_parser("schema", help="inspect or extend a store's schema")
    schema_sub = schema.add_subparsers(dest="schema_command", required=True)
    apply = schema_sub.add_parser("apply", help="apply the [schema] of a circuit.toml")
    apply.add_argument("manifest", type=Path)
    apply.add_argument("--db", required=True)
    apply.set_defaults(func=cmd_schema_apply)
    add = schema_sub.add_parser("add-field", help="add a custom field (its name must end in __c)")
    add.add_argument("object")
    add.add_argument("field")
    add.add_argument("type", help="text, number, boolean, date, datetime, email, phone, picklist, reference, json")
    add.add_argument("--db", required=True)
    add.add_argument("--required", action="store_true")
    add.add_argument("--unique", action="store_true")
    add.add_argument("--external-id", action="store_true")
    add.add_argument("--length", type=int)
    add.add_argument("--precision", type=int)
    add.add_argument("--scale", type=int)
    add.add_argument("--values", help="picklist values, comma separated")
    add.add_argument("--reference-to", help="the object a reference points to")
    add.set_defaults(func=cmd_schema_add_field)
    show = schema_sub.add_parser("show", help="list an object's fields")
    show.add_argument("object")
    show.add_argument("--db", required=True)
    show.set_defaults(func=cmd_schema_show)
