"""The host's master key: where it comes from, the file it is kept in, and rotating it.

``CIRCUIT_MASTER_KEY`` (``ServerSettings.master_key``) wins; otherwise the key file
(``data_dir/master.key`` unless ``master_key_file`` says otherwise) is read, or made on the
first start (0600, never overwritten). A rotation writes the new key beside the old one
(``master.key.new``) before re-encrypting in one transaction, and renames it over the old one
after the commit; a start that finds ``master.key.new`` finishes or abandons that rotation
according to the key the database is under, so a crash at any point leaves it readable.
"""

from __future__ import annotations

import os
import secrets
from collections.abc import Callable
from pathlib import Path

import structlog

from ..errors import Rejected
from ..platform import Platform
from ..platform.secret_box import MasterKey, MasterKeyError, SecretBox
from ..storage_engine import tighten
from .settings import ServerSettings

log = structlog.get_logger("circuit.server")
ENVIRONMENT_SOURCE = "CIRCUIT_MASTER_KEY"


def open_platform(settings: ServerSettings) -> Platform:
    """The server's platform store, its secrets opened with the master key; ``MasterKeyError`` (a
    message saying which key is wrong or missing) when they cannot be."""
    secure_data_dir(settings.data_dir)
    if settings.master_key is not None:
        key = MasterKey.parse(settings.master_key.get_secret_value(), ENVIRONMENT_SOURCE)
        return Platform(settings.platform_url, secret_box=SecretBox(key))
    path = settings.master_key_path
    pending = pending_key_path(path)
    created = not path.exists()
    key = _create_key_file(path) if created else read_key_file(path)
    rotating = read_key_file(pending) if pending.exists() else None
    try:
        platform = Platform(settings.platform_url, secret_box=SecretBox(key, *([rotating] if rotating else [])))
    except MasterKeyError as exc:
        if not created:
            raise
        path.unlink()  # made just now for a database that was never under it: leave room for the real one
        raise MasterKeyError(
            f"{exc}. The key file {path} was missing (one was made and removed again): restore it from "
            f"your backup, or set {ENVIRONMENT_SOURCE}"
        ) from None
    if rotating is not None:
        try:
            _settle_rotation(platform, path, pending, key, rotating)
        except BaseException:
            platform.close()
            raise
    return platform


def rotate_master_key(
    settings: ServerSettings,
    new_key: MasterKey | None = None,
    *,
    after_step: Callable[[str], None] = lambda step: None,
) -> tuple[MasterKey, int]:
    """Re-encrypt every secret under a new key (``new_key`` or a generated one) in one transaction;
    the new key and how many tenants' settings were re-encrypted.

    With a key file, the new key is on disk (``master.key.new``) before the transaction and replaces
    the file after it. ``after_step`` is called after each step (tests stop the process there).
    Servers using the old key must be stopped first: they cannot read what is re-encrypted.
    """
    new = new_key or MasterKey.generate()
    with open_platform(settings) as platform:
        old = platform.tenants.secret_box.current
        if new.id == old.id:
            raise Rejected("the new master key is the one in use")
        path = settings.master_key_path
        pending = pending_key_path(path)
        if settings.master_key is None:
            pending.unlink(missing_ok=True)  # a stale one: open_platform settled any earlier rotation
            _write_new(pending, new)
            after_step("new key written")
        count = platform.tenants.reseal_settings(SecretBox(new, old))
        after_step("re-encrypted")
        if settings.master_key is None:
            _replace(pending, path)
            after_step("key file replaced")
    return new, count


def secure_data_dir(data_dir: Path) -> None:
    """The data directory, made 0700 (or tightened to it): it holds the key, the databases and credentials."""
    data_dir.mkdir(parents=True, exist_ok=True, mode=0o700)
    tighten(data_dir, 0o700)


def pending_key_path(path: Path) -> Path:
    return path.with_name(path.name + ".new")


def read_key_file(path: Path) -> MasterKey:
    tighten(path, 0o600)
    try:
        text = path.read_text()
    except OSError as exc:
        raise MasterKeyError(f"cannot read the master key file {path}: {exc.strerror}") from None
    return MasterKey.parse(text, str(path))


def _create_key_file(path: Path) -> MasterKey:
    """A new key in a new file; if another process made the file first, its key."""
    key = MasterKey.generate(str(path))
    try:
        _write_new(path, key)
    except FileExistsError:
        return read_key_file(path)
    log.warning("made a new master key; back it up apart from the database", path=str(path), key=key.id)
    return key


def _write_new(path: Path, key: MasterKey) -> None:
    """Write the key to a new file, whole or not at all: a temporary file, fsynced, then linked in
    place (which fails if ``path`` exists, so a key file is never overwritten)."""
    path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    temporary = path.with_name(f".{path.name}.{secrets.token_hex(4)}.tmp")
    fd = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    try:
        with os.fdopen(fd, "w") as out:
            out.write(key.encoded() + "\n")
            out.flush()
            os.fsync(out.fileno())
        os.link(temporary, path)
    finally:
        temporary.unlink(missing_ok=True)
    _fsync_dir(path.parent)


def _replace(pending: Path, path: Path) -> None:
    os.replace(pending, path)
    _fsync_dir(path.parent)


def _settle_rotation(platform: Platform, path: Path, pending: Path, old: MasterKey, new: MasterKey) -> None:
    """A rotation stopped before the key file was replaced: finish it if its transaction committed."""
    if new.id in platform.tenants.key_ids_in_use():
        platform.tenants.reseal_settings(SecretBox(new, old))  # nothing should be left under the old key
        _replace(pending, path)
        log.warning("finished an interrupted master key rotation", path=str(path), key=new.id)
    else:
        pending.unlink()
        log.warning("discarded the new key of a master key rotation that did not commit", path=str(pending))


def _fsync_dir(directory: Path) -> None:
    fd = os.open(directory, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
