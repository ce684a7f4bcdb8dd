"""Commands that call a running server's API: deploy, promote, rollback, logs."""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path
from typing import Any

from ..client import Client
from ..errors import Rejected
from ..settings import HostSettings


def api_client(args: argparse.Namespace) -> Client:
    """The server API client for ``--server`` and ``--key`` (or ``$CIRCUIT_API_KEY``)."""
    key = args.key or os.environ.get("CIRCUIT_API_KEY")
    if not key:
        raise Rejected("an API key is needed: --key KEY or CIRCUIT_API_KEY")
    return Client(args.server, key)


def cmd_deploy(args: argparse.Namespace, settings: HostSettings) -> int:
    if not Path(args.bundle).is_file():
        raise Rejected(f"no bundle file {args.bundle} (circuit build DIR writes one and prints its path)")
    client = api_client(args)
    try:
        bundle = client.upload_bundle(args.bundle)
        answer = client.deploy(args.env, bundle["name"], bundle["version"])
        if isinstance(answer, dict):  # staging, production: the deploy gate runs in a job
            if args.no_wait:
                print(f"deploy gate run {answer['gate_run']} queued: circuit gate-run {answer['gate_run']}")
                return 0
            gate = wait_for_gate(client, answer, args.poll)
            if gate["state"] != "passed":
                raise Rejected(
                    f"the deploy gate {gate['state']} {bundle['name']} {bundle['version']}: {gate['detail']}"
                )
            answer = client.active_circuits(args.env)
    finally:
        client.close()
    print(f"deployed {bundle['name']} {bundle['version']} to {args.env}")
    for circuit in answer:
        print(f"  {circuit['name']} {circuit['version']}")
    return 0


def wait_for_gate(client: Client, gate: dict[str, Any], poll_s: float) -> dict[str, Any]:
    """Poll a gate run until it has a verdict, keeping one progress line on stderr."""
    started = time.monotonic()
    while gate["state"] == "pending":
        elapsed = time.monotonic() - started
        print(f"\rdeploy gate {gate['gate_run']}: running the tests... {elapsed:.0f}s", end="", file=sys.stderr)
        time.sleep(poll_s)
        gate = client.gate_run(gate["gate_run"])
    print(f"\rdeploy gate {gate['gate_run']}: {gate['state']} after {time.monotonic() - started:.0f}s", file=sys.stderr)
    return gate


def cmd_gate_run(args: argparse.Namespace, settings: HostSettings) -> int:
    client = api_client(args)
    try:
        gate = client.gate_run(args.id)
        if args.wait:
            gate = wait_for_gate(client, gate, args.poll)
    finally:
        client.close()
    what = ", ".join(f"{name} {version}" for name, version in gate["circuits"].items())
    source = f" from {gate['from_env']}" if gate.get("from_env") else ""
    print(f"gate run {gate['gate_run']}: {gate['state']} ({gate['kind']} of {what}{source} to {gate['env']})")
    if gate["detail"]:
        print(f"  {gate['detail']}")
    return 0 if gate["state"] in ("passed", "pending") else 1


def cmd_promote(args: argparse.Namespace, settings: HostSettings) -> int:
    client = api_client(args)
    try:
        answer = client.promote(args.from_env, args.to_env, args.circuit)
        if isinstance(answer, dict):  # to staging, production: the deploy gate runs in a job
            if args.no_wait:
                print(f"promotion gate run {answer['gate_run']} queued: circuit gate-run {answer['gate_run']}")
                return 0
            gate = wait_for_gate(client, answer, args.poll)
            if gate["state"] != "passed":
                what = ", ".join(f"{name} {version}" for name, version in gate["circuits"].items())
                raise Rejected(f"the deploy gate {gate['state']} the promotion of {what}: {gate['detail']}")
            answer = client.active_circuits(args.to_env)
        active = answer
    finally:
        client.close()
    print(f"promoted {args.from_env} -> {args.to_env}: " + ", ".join(f"{c['name']} {c['version']}" for c in active))
    return 0


def cmd_rollback(args: argparse.Namespace, settings: HostSettings) -> int:
    client = api_client(args)
    try:
        active = client.rollback(args.env, args.circuit, args.to)
    finally:
        client.close()
    print(f"{args.env} now runs: " + ", ".join(f"{c['name']} {c['version']}" for c in active))
    return 0


def cmd_logs(args: argparse.Namespace, settings: HostSettings) -> int:
    """The newest executions; with ``--tail``, then each new one as the server streams it (the
    dashboard's live tail), reconnecting where it left off when the stream ends."""
    client = api_client(args)
    filters = {"env": args.env, "circuit": args.circuit, "status": args.status}
    try:
        page = client.executions(**filters, limit=args.limit)["executions"]
        for entry in reversed(page):
            print_execution(entry)
            if args.verbose_log:
                print(client.execution(entry["id"])["debug_log"], flush=True)
        last = page[0]["id"] if page else None
        while args.tail:
            for event, data in client.stream_executions(logs=args.verbose_log, last_event_id=last, **filters):
                if event == "execution":
                    print_execution(data)
                    last = data["id"]
                elif event == "log":
                    print(data["line"], flush=True)
                elif event == "gap":
                    print(f"… {data['detail']}", flush=True)
            time.sleep(args.interval)
        return 0
    except KeyboardInterrupt:
        return 0
    finally:
        client.close()


def print_execution(entry: dict[str, Any]) -> None:
    line = f"{entry['started_at']} {entry['env']:<10} {entry['status']:<15} {entry['trigger']} {entry['id']}"
    print(line, flush=True)


def remote_parser(sub: Any, name: str, help_text: str) -> argparse.ArgumentParser:
    """A subcommand that calls the server: ``--server`` and ``--key`` (or their environment variables)."""
    command: argparse.ArgumentParser = sub.add_parser(name, help=help_text)
    add_remote_options(command)
    return command


def add_remote_options(command: argparse.ArgumentParser) -> None:
    command.add_argument("--server", default=os.environ.get("CIRCUIT_SERVER", "http://127.0.0.1:8080"))
    command.add_argument("--key", default=None, help="API key (default: $CIRCUIT_API_KEY)")


def register(sub: Any) -> None:
    def remote(name: str, help_text: str) -> argparse.ArgumentParser:
        return remote_parser(sub, name, help_text)

    deploy = remote("deploy", "upload a bundle and make it active in an environment")
    deploy.add_argument("bundle", type=Path, help="a .circuit bundle from `circuit build`")
    deploy.add_argument("--env", required=True, choices=("dev", "staging", "production"))
    deploy.add_argument("--no-wait", action="store_true", help="staging, production: print the gate run id and return")
    deploy.add_argument("--poll", type=float, default=1.0, help="seconds between looks at the deploy gate")
    deploy.set_defaults(func=cmd_deploy)
    gate_run = remote("gate-run", "a gated deploy's gate run: pending, passed or refused")
    gate_run.add_argument("id", type=int)
    gate_run.add_argument("--wait", action="store_true", help="wait for the verdict")
    gate_run.add_argument("--poll", type=float, default=1.0)
    gate_run.set_defaults(func=cmd_gate_run)
    promote = remote("promote", "copy the active versions of one environment to another")
    promote.add_argument("--from", dest="from_env", required=True, choices=("dev", "staging", "production"))
    promote.add_argument("--to", dest="to_env", required=True, choices=("dev", "staging", "production"))
    promote.add_argument("--circuit", default=None)
    promote.add_argument("--no-wait", action="store_true", help="to staging, production: print the gate run id")
    promote.add_argument("--poll", type=float, default=1.0, help="seconds between looks at the deploy gate")
    promote.set_defaults(func=cmd_promote)
    rollback = remote("rollback", "make an earlier version active again")
    rollback.add_argument("--env", required=True, choices=("dev", "staging", "production"))
    rollback.add_argument("--circuit", required=True)
    rollback.add_argument("--to", default=None, help="the version to return to (default: the previous one)")
    rollback.set_defaults(func=cmd_rollback)
    logs = remote("logs", "list executions; --tail follows new ones as the server streams them")
    logs.add_argument("--tail", action="store_true")
    logs.add_argument("--env", default=None)
    logs.add_argument("--circuit", default=None)
    logs.add_argument("--status", default=None)
    logs.add_argument("--limit", type=int, default=20)
    logs.add_argument("--interval", type=float, default=1.0, help="seconds before reconnecting an ended stream")
    logs.add_argument("--debug-log", dest="verbose_log", action="store_true", help="print each debug log too")
    logs.set_defaults(func=cmd_logs)
