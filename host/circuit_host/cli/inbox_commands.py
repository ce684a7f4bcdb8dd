"""Commands on a running server's webhook inbox: list stored webhooks, retry a dead-lettered one."""

from __future__ import annotations

import argparse
from typing import Any

from ..settings import HostSettings
from .remote_commands import api_client, remote_parser


def line(entry: dict[str, Any]) -> str:
    what = f"{entry['source']} {entry['object']}.{entry['action']}@{entry['env']}"
    return (
        f"{entry['id']:>8} {entry['state']:<8} {what:<40} records {entry['records']:<4} "
        f"attempts {entry['attempts']} execution {entry['execution_id'] or '-'}"
    )


def cmd_inbox_list(args: argparse.Namespace, settings: HostSettings) -> int:
    client = api_client(args)
    try:
        page = client.inbox(state=args.state, env=args.env, limit=args.limit)
    finally:
        client.close()
    for entry in page["entries"]:
        print(line(entry))
        if entry["last_error"]:
            print(f"{'':>9}{entry['last_error']}")
    if not page["entries"]:
        print("no stored webhooks")
    return 0


def cmd_inbox_retry(args: argparse.Namespace, settings: HostSettings) -> int:
    client = api_client(args)
    try:
        entry = client.retry_inbox_entry(args.id)
    finally:
        client.close()
    print(f"inbox entry {entry['id']} is {entry['state']} again: a worker applies it with a fresh round of attempts")
    return 0


def register(sub: Any) -> None:
    inbox = sub.add_parser("inbox", help="the server's stored webhooks (list, retry a dead-lettered one)")
    inbox_sub = inbox.add_subparsers(dest="inbox_command", required=True)
    listing = remote_parser(inbox_sub, "list", "stored webhooks, newest first, with their last error")
    listing.add_argument("--state", choices=("pending", "applied", "dead"), default=None)
    listing.add_argument("--env", choices=("dev", "staging", "production"), default=None)
    listing.add_argument("--limit", type=int, default=50)
    listing.set_defaults(func=cmd_inbox_list)
    retry = remote_parser(inbox_sub, "retry", "apply a dead-lettered webhook again (after fixing its cause)")
    retry.add_argument("id", type=int)
    retry.set_defaults(func=cmd_inbox_retry)
