"""``python -m circuit_host.migrations``: write a new revision, or upgrade and inspect a database by hand.

    python -m circuit_host.migrations revision control_plane -m "add tenants.region"
    python -m circuit_host.migrations upgrade control_plane --url postgresql://... [--prefix cs_]
    python -m circuit_host.migrations current control_plane --url platform.sqlite3

Stores upgrade their database themselves when they open it; ``upgrade`` is for operators
who want to migrate before starting the servers.
"""

from __future__ import annotations

import argparse
import re
import sys
from collections.abc import Sequence
from dataclasses import replace

from alembic import command

from ..storage_engine import make_engine
from . import HERE, SCHEMAS, MigratedSchema, alembic_config, current_revisions, upgrade


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m circuit_host.migrations", description=__doc__.splitlines()[0])
    commands = parser.add_subparsers(dest="command", required=True)
    revision = commands.add_parser("revision", help="write an empty revision after the newest one")
    revision.add_argument("schema", choices=sorted(SCHEMAS))
    revision.add_argument("-m", "--message", required=True)
    for name, text in (("upgrade", "bring a database to the newest revision"), ("current", "print its revision")):
        sub = commands.add_parser(name, help=text)
        sub.add_argument("schema", choices=sorted(SCHEMAS))
        sub.add_argument("--url", required=True, help="a SQLite path or a sqlite:/postgresql: URL")
        sub.add_argument("--prefix", default=None, help="the table prefix (default: the store's default)")
    args = parser.parse_args(argv)
    schema = _schema(args.schema, getattr(args, "prefix", None))
    if args.command == "revision":
        folder = HERE / "versions" / schema.name
        numbers = [int(m.group(1)) for p in folder.glob("r*.py") if (m := re.match(r"r(\d+)_", p.name))]
        config = alembic_config(schema)
        config.set_main_option("file_template", "r%%(rev)s_%%(slug)s")
        command.revision(config, args.message, rev_id=f"{max(numbers, default=0) + 1:04d}")
        return 0
    engine = make_engine(args.url)
    try:
        if args.command == "upgrade":
            upgrade(engine, schema)
        print(", ".join(sorted(current_revisions(engine, schema))) or "(none)")
    finally:
        engine.dispose()
    return 0


def _schema(name: str, prefix: str | None) -> MigratedSchema:
    default = SCHEMAS[name]
    return default if prefix is None or not default.prefix else replace(default, prefix=prefix)


if __name__ == "__main__":
    sys.exit(main())
