"""Commands on the host's master key, run where the server's data is: generate-key, rotate-master-key."""

from __future__ import annotations

import argparse
import os
from pathlib import Path
from typing import Any

from ..errors import Rejected
from ..settings import HostSettings
from .server_commands import master_key_from_environment


def cmd_generate_key(args: argparse.Namespace, settings: HostSettings) -> int:
    from ..platform import MasterKey

    print(MasterKey.generate().encoded())
    return 0


def cmd_rotate_master_key(args: argparse.Namespace, settings: HostSettings) -> int:
    from ..platform import MasterKey
    from ..server import ServerSettings
    from ..server.master_key import ENVIRONMENT_SOURCE, rotate_master_key

    current = master_key_from_environment()
    server_settings = ServerSettings(data_dir=args.data_dir, db_url=args.db, master_key=current)
    new_key: MasterKey | None = None
    if args.new_key_env:
        text = os.environ.get(args.new_key_env)
        if not text:
            raise Rejected(f"--new-key-env {args.new_key_env}: that environment variable is not set")
        new_key = MasterKey.parse(text, args.new_key_env)
    elif current is not None:
        # Shown before anything changes: if this command is stopped after its commit, this is the key.
        new_key = MasterKey.generate()
        print(f"new master key (shown once): {new_key.encoded()}", flush=True)
    new, count = rotate_master_key(server_settings, new_key)
    print(f"re-encrypted the settings of {count} tenant(s) under master key {new.id}")
    if current is not None:
        print(f"set {ENVIRONMENT_SOURCE} to the new key before starting the servers again")
    else:
        print(f"{server_settings.master_key_path} holds the new key: back it up, apart from the database")
    return 0


def register(sub: Any) -> None:
    group = sub.add_parser("secrets", help="the master key that encrypts secrets at rest (run where the data is)")
    secrets_sub = group.add_subparsers(dest="secrets_command", required=True)
    generate = secrets_sub.add_parser("generate-key", help="print a new master key, e.g. for CIRCUIT_MASTER_KEY")
    generate.set_defaults(func=cmd_generate_key)
    rotate = secrets_sub.add_parser(
        "rotate-master-key", help="re-encrypt every secret under a new master key (stop the servers first)"
    )
    rotate.add_argument("--data-dir", type=Path, default=Path(".circuit"))
    rotate.add_argument("--db", default=None, help="the server's postgresql:// URL, if it uses one")
    rotate.add_argument(
        "--new-key-env",
        metavar="VAR",
        default=None,
        help="take the new key from this environment variable (with CIRCUIT_MASTER_KEY; else one is printed)",
    )
    rotate.set_defaults(func=cmd_rotate_master_key)
