"""The ``circuit`` command line: one module per group of commands, each adding its own subcommands."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from importlib.metadata import version
from pathlib import Path

from ..errors import CircuitError
from ..settings import HostSettings, configure_logging, default_cache_dir
from . import (
    batch_commands,
    inbox_commands,
    jobs_commands,
    local_commands,
    outbox_commands,
    remote_commands,
    secrets_commands,
    server_commands,
    settings_commands,
    worker_commands,
)

COMMAND_GROUPS = (
    local_commands,
    server_commands,
    secrets_commands,
    remote_commands,
    settings_commands,
    outbox_commands,
    jobs_commands,
    batch_commands,
    inbox_commands,
    worker_commands,
)


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="circuit", description="Circuit Script: sandboxed CRM circuits.")
    p.add_argument(
        "--version",
        action="version",
        version=f"circuit-script {version('circuit-script')} (wasmtime {version('wasmtime')})",
    )
    p.add_argument("--cache-dir", type=Path, default=None, help="compiled-module cache (default ~/.cache/...)")
    p.add_argument("--tenant", default="default", help="the tenant whose records and schema to use")
    p.add_argument("-v", "--verbose", action="store_true", help="host logs at debug level on stderr")
    sub = p.add_subparsers(dest="command", required=True)

    for group in COMMAND_GROUPS:
        group.register(sub)
    return p


def main(argv: Sequence[str] | None = None) -> int:
    args = parser().parse_args(argv)
    configure_logging("debug" if args.verbose else "warning")
    settings = HostSettings(cache_dir=args.cache_dir or default_cache_dir())
    try:
        code: int = args.func(args, settings)
    except CircuitError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    return code
