"""Commands on a running server's CRM outbox: list queued writes, retry a dead-lettered one."""

from __future__ import annotations

import argparse
from typing import Any

from ..settings import HostSettings
from .remote_commands import api_client, remote_parser

STATES = ("pending", "sending", "sent", "dead")


def cmd_outbox_list(args: argparse.Namespace, settings: HostSettings) -> int:
    client = api_client(args)
    try:
        entries = client.outbox(args.state, args.limit)
    finally:
        client.close()
    for e in entries:
        print(
            f"{e['id']:>6} {e['state']:<8} {e['env']:<10} {e['crm']:<12} {e['operation']} {e['object']} "
            f"rows {e['done']}/{e['rows']} attempts {e['attempts']} execution {e['execution_id'] or '-'}"
        )
        if e["last_error"]:
            print(f"       {e['last_error']}")
    if not entries:
        print("no outbox entries" + (f" in state {args.state}" if args.state else ""))
    return 0


def cmd_outbox_retry(args: argparse.Namespace, settings: HostSettings) -> int:
    client = api_client(args)
    try:
        entry = client.retry_outbox_entry(args.id)
    finally:
        client.close()
    print(f"outbox entry {entry['id']} is {entry['state']} again: the dispatcher sends it on its next pass")
    return 0


def register(sub: Any) -> None:
    outbox = sub.add_parser("outbox", help="the server's queued CRM writes (list, retry)")
    outbox_sub = outbox.add_subparsers(dest="outbox_command", required=True)
    listing = remote_parser(outbox_sub, "list", "list CRM writes, newest first, with the CRM's last error")
    listing.add_argument("--state", choices=STATES, default=None)
    listing.add_argument("--limit", type=int, default=100)
    listing.set_defaults(func=cmd_outbox_list)
    retry = remote_parser(outbox_sub, "retry", "send a dead-lettered CRM write again (after fixing its cause)")
    retry.add_argument("id", type=int)
    retry.set_defaults(func=cmd_outbox_retry)
