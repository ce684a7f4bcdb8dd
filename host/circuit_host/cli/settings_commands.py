"""``circuit settings`` and ``circuit credentials``: configure a tenant through a running server's API.

Secrets go in (as values, or ``@file`` so they stay out of shell history) and never come back out:
the server shows them as set, with a fingerprint.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any

from ..errors import Rejected
from ..settings import HostSettings
from .remote_commands import api_client, remote_parser


def setting_value(text: str) -> Any:
    """A value from the command line: ``@FILE`` is the file's text (a PEM key, a token; one trailing
    newline dropped), ``@@...`` a literal ``@...``; else JSON when it parses (numbers, booleans, lists,
    objects, null), else the text itself."""
    if text.startswith("@@"):
        return text[1:]
    if text.startswith("@"):
        path = Path(text[1:])
        try:
            content = path.read_text()
        except OSError as exc:
            raise Rejected(f"cannot read {path}: {exc.strerror or exc}") from None
        return content.removesuffix("\n").removesuffix("\r")
    try:
        return json.loads(text)
    except ValueError:
        return text


def header(text: str) -> tuple[str, str]:
    """``'Name: value'`` (the value may be ``@FILE``)."""
    name, colon, value = text.partition(":")
    if not colon or not name.strip():
        raise Rejected(f"--header {text[:60]!r} must look like 'Name: value'")
    value = value.strip()
    read = setting_value(value) if value.startswith("@") else value
    return name.strip(), str(read)


def _is_secret_state(value: Any) -> bool:
    return isinstance(value, dict) and isinstance(value.get("set"), bool) and set(value) <= {"set", "fingerprint"}


def shown(value: Any) -> str:
    """A setting's value for a person: secrets as ``set (fingerprint …)`` / ``not set``."""
    if _is_secret_state(value):
        return f"set (fingerprint {value['fingerprint']})" if value["set"] else "not set"
    if isinstance(value, dict) and any(_is_secret_state(v) for v in value.values()):
        return "{" + ", ".join(f"{k}: {shown(v)}" for k, v in value.items()) + "}"
    return json.dumps(value)


def cmd_settings_show(args: argparse.Namespace, settings: HostSettings) -> int:
    client = api_client(args)
    try:
        current = client.settings()
    finally:
        client.close()
    if args.json:
        print(json.dumps(current, indent=2))
        return 0
    for key in sorted(current):
        if key == "named_credentials":
            print(f"{key} = {', '.join(sorted(current[key])) or '(none)'}   (circuit credentials list)")
        else:
            print(f"{key} = {shown(current[key])}")
    return 0


def cmd_settings_set(args: argparse.Namespace, settings: HostSettings) -> int:
    client = api_client(args)
    try:
        after = client.update_settings({args.setting: setting_value(args.value)})
    finally:
        client.close()
    print(f"{args.setting} = {shown(after.get(args.setting))}")
    return 0


def cmd_settings_unset(args: argparse.Namespace, settings: HostSettings) -> int:
    client = api_client(args)
    try:
        after = client.update_settings({args.setting: None})
    finally:
        client.close()
    print(f"{args.setting} = {shown(after.get(args.setting))}   (the default)")
    return 0


def cmd_credentials_set(args: argparse.Namespace, settings: HostSettings) -> int:
    headers = dict(header(h) for h in args.header)
    client = api_client(args)
    try:
        saved = client.put_credential(args.name, args.url, headers)
    finally:
        client.close()
    print(f"{saved['name']}  {saved['url']}")
    for name, state in saved["headers"].items():
        print(f"  {name}: {shown(state)}")
    return 0


def cmd_credentials_list(args: argparse.Namespace, settings: HostSettings) -> int:
    client = api_client(args)
    try:
        listed = client.credentials()
    finally:
        client.close()
    if args.json:
        print(json.dumps(listed, indent=2))
        return 0
    if not listed:
        print("no named credentials")
    for credential in listed:
        used = f"   used by {'; '.join(credential['used_by'])}" if credential["used_by"] else ""
        print(f"{credential['name']}  {credential['url']}{used}")
        for name, state in credential["headers"].items():
            print(f"  {name}: {shown(state)}")
    return 0


def cmd_credentials_delete(args: argparse.Namespace, settings: HostSettings) -> int:
    client = api_client(args)
    try:
        client.delete_credential(args.name)
    finally:
        client.close()
    print(f"deleted {args.name}")
    return 0


def register(sub: Any) -> None:
    group = sub.add_parser("settings", help="show or change the tenant's settings on a server")
    commands = group.add_subparsers(dest="settings_command", required=True)
    show = remote_parser(commands, "show", "the settings (secrets as fingerprints)")
    show.add_argument("--json", action="store_true", help="the API's JSON answer")
    show.set_defaults(func=cmd_settings_show)
    set_ = remote_parser(commands, "set", "change one setting")
    set_.add_argument("setting", metavar="KEY")  # not "key": --key is the API key
    set_.add_argument("value", help="JSON when it parses, else text; @FILE reads a file (a PEM key); @@x is '@x'")
    set_.set_defaults(func=cmd_settings_set)
    unset = remote_parser(commands, "unset", "return a setting to its default (clears an optional one)")
    unset.add_argument("setting", metavar="KEY")
    unset.set_defaults(func=cmd_settings_unset)

    creds = sub.add_parser("credentials", help="named credentials circuits reach as callout:NAME/path")
    creds_commands = creds.add_subparsers(dest="credentials_command", required=True)
    put = remote_parser(creds_commands, "set", "create or replace a named credential")
    put.add_argument("name")
    put.add_argument("--url", required=True, help="base URL; circuits' paths stay under it")
    put.add_argument(
        "--header", action="append", default=[], help="'Name: value' (value may be @FILE); repeat for more"
    )
    put.set_defaults(func=cmd_credentials_set)
    listing = remote_parser(creds_commands, "list", "names, URLs and header names (values as fingerprints)")
    listing.add_argument("--json", action="store_true", help="the API's JSON answer")
    listing.set_defaults(func=cmd_credentials_list)
    delete = remote_parser(creds_commands, "delete", "delete one (refused while an active circuit declares it)")
    delete.add_argument("name")
    delete.set_defaults(func=cmd_credentials_delete)
