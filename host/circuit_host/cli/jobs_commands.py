"""Commands on a running server's jobs: list, show, cancel, retry a dead one."""

from __future__ import annotations

import argparse
import json
from typing import Any

from ..settings import HostSettings
from .remote_commands import api_client, remote_parser


def line(job: dict[str, Any]) -> str:
    where = f"{job['circuit'] or '-'}@{job['env'] or '-'}"
    return (
        f"{job['id']:>8} {job['state']:<9} {job['kind']:<20} {where:<28} "
        f"attempts {job['attempts']}/{job['max_attempts']} execution {job['execution_id'] or '-'}"
    )


def cmd_jobs_list(args: argparse.Namespace, settings: HostSettings) -> int:
    filters = {"kind": args.kind, "state": args.state, "circuit": args.circuit, "env": args.env, "limit": args.limit}
    client = api_client(args)
    try:
        page = client.jobs(**filters)
    finally:
        client.close()
    for job in page["jobs"]:
        print(line(job))
        if job["last_error"]:
            print(f"{'':>9}{job['last_error']}")
    if not page["jobs"]:
        print("no jobs")
    return 0


def cmd_jobs_show(args: argparse.Namespace, settings: HostSettings) -> int:
    client = api_client(args)
    try:
        job = client.job(args.id)
    finally:
        client.close()
    print(json.dumps(job, indent=2, sort_keys=True))
    return 0


def cmd_jobs_cancel(args: argparse.Namespace, settings: HostSettings) -> int:
    client = api_client(args)
    try:
        job = client.cancel_job(args.id)
    finally:
        client.close()
    if job["state"] == "cancelled":
        print(f"job {job['id']} cancelled")
    else:
        print(f"job {job['id']} is running: asked to stop (it ends cancelled if its handler stops)")
    return 0


def cmd_jobs_retry(args: argparse.Namespace, settings: HostSettings) -> int:
    client = api_client(args)
    try:
        job = client.retry_job(args.id)
    finally:
        client.close()
    print(f"job {job['id']} is {job['state']} again: a worker runs it once more")
    return 0


def register(sub: Any) -> None:
    jobs = sub.add_parser("jobs", help="the server's jobs (list, show, cancel, retry)")
    jobs_sub = jobs.add_subparsers(dest="jobs_command", required=True)
    listing = remote_parser(jobs_sub, "list", "list jobs, newest first, with their last error")
    listing.add_argument("--kind", default=None)
    listing.add_argument("--state", default=None, help="todo, doing, succeeded, cancelled or dead")
    listing.add_argument("--circuit", default=None)
    listing.add_argument("--env", choices=("dev", "staging", "production"), default=None)
    listing.add_argument("--limit", type=int, default=50)
    listing.set_defaults(func=cmd_jobs_list)
    for name, text, func in (
        ("show", "one job, as JSON", cmd_jobs_show),
        ("cancel", "cancel a waiting job, or ask a running one to stop", cmd_jobs_cancel),
        ("retry", "run a dead job once more (after fixing its cause)", cmd_jobs_retry),
    ):
        command = remote_parser(jobs_sub, name, text)
        command.add_argument("id", type=int)
        command.set_defaults(func=func)
