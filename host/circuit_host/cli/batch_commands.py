"""``circuit batch``: start a batch of an active circuit on a running server, follow it, cancel it."""

from __future__ import annotations

import argparse
import sys
import time
from typing import Any, TextIO

from ..settings import HostSettings
from .remote_commands import api_client, remote_parser

BAR_WIDTH = 30


def progress(batch: dict[str, Any]) -> str:
    """One line: state, chunks, records (of the total counted at start) and, once ended, its error."""
    done = batch["records_processed"] + batch["records_failed"]
    of = f"/{batch['total']}" if batch["total"] is not None else ""
    text = (
        f"batch {batch['id']} {batch['state']}: {batch['chunks_ok']} chunks ok, {batch['chunks_failed']} failed, "
        f"{done}{of} records ({batch['records_processed']} processed)"
    )
    return f"{text}: {batch['error']}" if batch["error"] and batch["state"] != "cancelled" else text


def bar(batch: dict[str, Any]) -> str:
    """The line behind a bar of the records done so far (a TTY's view)."""
    done = batch["records_processed"] + batch["records_failed"]
    total = batch["total"] or 0
    filled = BAR_WIDTH if batch["state"] == "finished" else min(BAR_WIDTH, done * BAR_WIDTH // total) if total else 0
    return f"[{'#' * filled}{'.' * (BAR_WIDTH - filled)}] {progress(batch)}"


def cmd_batch_start(args: argparse.Namespace, settings: HostSettings) -> int:
    client = api_client(args)
    try:
        batch = client.start_batch(args.circuit, args.env, args.scope, args.query)
        print(f"batch {batch['id']} started: circuit batch status {batch['id']} --wait")
        if args.wait:
            return follow(client, batch["id"], args.poll, sys.stdout)
    finally:
        client.close()
    return 0


def cmd_batch_status(args: argparse.Namespace, settings: HostSettings) -> int:
    client = api_client(args)
    try:
        if args.wait:
            return follow(client, args.id, args.poll, sys.stdout)
        batch = client.batch(args.id)
    finally:
        client.close()
    print(progress(batch))
    return 0 if batch["state"] in ("running", "finished") else 1


def follow(client: Any, batch_id: str, poll: float, out: TextIO) -> int:
    """Until the batch ends: a bar redrawn in place on a TTY, a line per change otherwise.
    Exit code 0 when it finished, 1 when it failed or was cancelled."""
    tty = out.isatty()
    last = ""
    while True:
        batch = client.batch(batch_id)
        shown = bar(batch) if tty else progress(batch)
        if shown != last:
            out.write(f"\r{shown}\x1b[K" if tty else f"{shown}\n")
            out.flush()
            last = shown
        if batch["state"] != "running":
            if tty:
                out.write("\n")
            return 0 if batch["state"] == "finished" else 1
        time.sleep(poll)


def cmd_batch_list(args: argparse.Namespace, settings: HostSettings) -> int:
    client = api_client(args)
    try:
        page = client.batches(args.limit)
    finally:
        client.close()
    for batch in page["batches"]:
        print(f"{batch['circuit']}@{batch['env']} {progress(batch)}")
    if not page["batches"]:
        print("no batches")
    return 0


def cmd_batch_cancel(args: argparse.Namespace, settings: HostSettings) -> int:
    client = api_client(args)
    try:
        batch = client.cancel_batch(args.id)
    finally:
        client.close()
    print(progress(batch))
    return 0


def register(sub: Any) -> None:
    batch = sub.add_parser("batch", help="batch circuits on a server (start, status, list, cancel)")
    batch_sub = batch.add_subparsers(dest="batch_command", required=True)
    start = remote_parser(batch_sub, "start", "start a batch of an active circuit: start, execute per chunk, finish")
    start.add_argument("circuit")
    start.add_argument("--env", required=True, choices=("dev", "staging", "production"))
    start.add_argument("--scope", type=int, default=200, help="records per chunk, 1 to 2,000 (default 200)")
    start.add_argument("--query", default=None, help="the SOQL to page (default: what the circuit's start returns)")
    start.add_argument("--wait", action="store_true", help="follow it until it ends")
    start.add_argument("--poll", type=float, default=1.0, help="seconds between looks (with --wait)")
    start.set_defaults(func=cmd_batch_start)
    status = remote_parser(batch_sub, "status", "a batch's progress: a bar on a terminal, a line otherwise")
    status.add_argument("id")
    status.add_argument("--wait", action="store_true", help="follow it until it ends (exit 1 unless it finished)")
    status.add_argument("--poll", type=float, default=1.0)
    status.set_defaults(func=cmd_batch_status)
    listing = remote_parser(batch_sub, "list", "batches, newest first")
    listing.add_argument("--limit", type=int, default=50)
    listing.set_defaults(func=cmd_batch_list)
    cancel = remote_parser(batch_sub, "cancel", "start no further chunk (the running one finishes)")
    cancel.add_argument("id")
    cancel.set_defaults(func=cmd_batch_cancel)
