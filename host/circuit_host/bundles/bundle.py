"""The bundle file: a zip holding ``circuit.toml``, ``module.wasm`` and, optionally, ``tests.wasm``.

``tests.wasm`` is the circuit's companion test module (the ``circuit-test`` world, built in
Debug so coverage can be mapped to source lines); staging and production deploys run it.

A bundle is named by the sha256 of its bytes. ``pack_bundle`` writes deterministic zips
(fixed timestamps and order), so packing the same inputs twice gives the same sha256.
``read_bundle`` treats its input as hostile: the size of the zip and the declared and
actual uncompressed size of each member are capped before anything is inflated, members
other than the two expected names (absolute paths, ``..``, directories, duplicates) are
rejected, and the module goes through the runtime's load-time checks.
"""

from __future__ import annotations

import hashlib
import io
import zipfile
import zlib
from dataclasses import dataclass
from pathlib import Path

from ..errors import Rejected
from ..execution.limits import LimitsProfile
from ..sandbox.runtime import Runtime
from .manifest import Manifest, parse_manifest, read_manifest

MANIFEST_NAME = "circuit.toml"
MODULE_NAME = "module.wasm"
TESTS_NAME = "tests.wasm"
MEMBERS = (MANIFEST_NAME, MODULE_NAME)  # required
OPTIONAL_MEMBERS = (TESTS_NAME,)
BUNDLE_SUFFIX = ".circuit"
MAX_BUNDLE_BYTES = 48 * 1024 * 1024  # a Python circuit with its tests is ~13 MB (two CPython components)
MAX_MANIFEST_BYTES = 256 * 1024
_EPOCH = (1980, 1, 1, 0, 0, 0)


@dataclass(frozen=True)
class Bundle:
    """A validated bundle: its content address, manifest (parsed and as text) and module."""

    sha256: str
    manifest: Manifest
    manifest_text: str
    wasm: bytes
    tests_wasm: bytes | None = None  # validated when the tests run (a test runtime links ``testing``)

    @property
    def name(self) -> str:
        return self.manifest.circuit.name

    @property
    def version(self) -> str:
        return self.manifest.circuit.version


def bundle_filename(manifest: Manifest) -> str:
    return f"{manifest.circuit.name}-{manifest.circuit.version}{BUNDLE_SUFFIX}"


def pack_bundle(manifest_path: Path, wasm_path: Path, out_dir: Path, tests_path: Path | None = None) -> Path:
    """Write ``out_dir/<name>-<version>.circuit`` from a manifest, a built module and its test module."""
    manifest = read_manifest(manifest_path)
    try:
        wasm = wasm_path.read_bytes()
        tests = tests_path.read_bytes() if tests_path is not None else None
    except OSError as exc:
        raise Rejected(f"cannot read module {exc.filename}: {exc.strerror}") from None
    data = pack_bytes(manifest_path.read_bytes(), wasm, tests)
    out_dir.mkdir(parents=True, exist_ok=True)
    target = out_dir / bundle_filename(manifest)
    temporary = target.with_name(target.name + ".tmp")
    temporary.write_bytes(data)
    temporary.replace(target)
    return target


def pack_bytes(manifest: bytes, wasm: bytes, tests: bytes | None = None) -> bytes:
    """The bundle zip for these members, byte-for-byte reproducible."""
    buffer = io.BytesIO()
    members = [(MANIFEST_NAME, manifest), (MODULE_NAME, wasm)]
    if tests is not None:
        members.append((TESTS_NAME, tests))
    with zipfile.ZipFile(buffer, "w") as archive:
        for name, content in members:
            info = zipfile.ZipInfo(name, date_time=_EPOCH)
            info.compress_type = zipfile.ZIP_DEFLATED
            info.external_attr = 0o644 << 16
            archive.writestr(info, content)
    return buffer.getvalue()


def read_bundle(
    data: bytes,
    runtime: Runtime,
    max_bytes: int = MAX_BUNDLE_BYTES,
    ceiling: LimitsProfile | None = None,
) -> Bundle:
    """Validate a bundle completely: zip structure, sizes, manifest and module.

    With ``ceiling`` (the tenant's maximum limits) the manifest's limit overrides are checked
    against it, and the module's initial memory against the resulting memory limit.
    """
    if len(data) > max_bytes:
        raise Rejected(f"bundle is {len(data)} bytes, over the limit of {max_bytes}")
    try:
        archive = zipfile.ZipFile(io.BytesIO(data))
    except (zipfile.BadZipFile, zipfile.LargeZipFile, ValueError, OSError) as exc:
        raise Rejected(f"bundle is not a valid zip file: {exc}") from None
    with archive:
        infos = _check_members(archive)
        manifest_bytes = _read_member(archive, infos[MANIFEST_NAME], MAX_MANIFEST_BYTES)
        wasm = _read_member(archive, infos[MODULE_NAME], runtime.max_module_bytes)
        tests = _read_member(archive, infos[TESTS_NAME], runtime.max_module_bytes) if TESTS_NAME in infos else None
    try:
        manifest_text = manifest_bytes.decode("utf-8")
    except UnicodeDecodeError:
        raise Rejected(f"bundle: {MANIFEST_NAME} is not valid UTF-8") from None
    manifest = parse_manifest(manifest_text, MANIFEST_NAME)
    profile = manifest.limits_profile(ceiling if ceiling is not None else LimitsProfile())
    try:
        runtime.load(wasm, profile.memory_bytes)
    except Rejected as exc:
        raise Rejected(f"bundle: {MODULE_NAME}: {exc}") from None
    return Bundle(hashlib.sha256(data).hexdigest(), manifest, manifest_text, wasm, tests)


def _check_members(archive: zipfile.ZipFile) -> dict[str, zipfile.ZipInfo]:
    found: dict[str, zipfile.ZipInfo] = {}
    for info in archive.infolist():
        name = info.filename
        if name.startswith(("/", "\\")) or (len(name) > 1 and name[1] == ":"):
            raise Rejected(f"bundle: member {name!r} has an absolute path")
        if ".." in name.replace("\\", "/").split("/"):
            raise Rejected(f"bundle: member {name!r} escapes the bundle ('..')")
        if name not in MEMBERS + OPTIONAL_MEMBERS:
            allowed = f"{' and '.join(MEMBERS)}, and optionally {TESTS_NAME}"
            raise Rejected(f"bundle: unexpected member {name!r} (a bundle holds {allowed})")
        if name in found:
            raise Rejected(f"bundle: member {name!r} appears twice")
        if info.flag_bits & 0x1:
            raise Rejected(f"bundle: member {name!r} is encrypted")
        if info.compress_type not in (zipfile.ZIP_STORED, zipfile.ZIP_DEFLATED):
            raise Rejected(f"bundle: member {name!r} uses an unsupported compression (stored or deflated only)")
        found[name] = info
    for name in MEMBERS:
        if name not in found:
            raise Rejected(f"bundle: {name} is missing (a bundle holds exactly {' and '.join(MEMBERS)})")
    return found


def _read_member(archive: zipfile.ZipFile, info: zipfile.ZipInfo, cap: int) -> bytes:
    """Read at most ``cap`` bytes: the declared size is checked first, the real size while inflating."""
    if info.file_size > cap:
        raise Rejected(f"bundle: {info.filename} is {info.file_size} bytes uncompressed, over the limit of {cap}")
    try:
        with archive.open(info) as member:
            content = member.read(cap + 1)
    except (zipfile.BadZipFile, zlib.error, OSError, EOFError, ValueError) as exc:  # bad CRC, truncated, bad stream
        raise Rejected(f"bundle: {info.filename} cannot be read: {exc}") from None
    if len(content) > cap:
        raise Rejected(f"bundle: {info.filename} inflates past the limit of {cap} bytes")
    return content
