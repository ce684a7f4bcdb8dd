"""Bundle a Python circuit's ``[python] requirements`` into one build-local import root.

A guest is CPython compiled to WebAssembly: it can import Python source and nothing else, so
every dependency must be pure Python. Specifiers and wheel files go through pip, restricted
to ``py3-none-any``-style wheels for the interpreter componentize-py embeds (dependencies of
dependencies included); local directories and modules are copied as they are. Whatever lands
in the target is then checked again: one native library anywhere is a ``BuildError``.
"""

from __future__ import annotations

import hashlib
import os
import re
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Sequence
from pathlib import Path

from ..bundles.manifest import requirement_path
from .zig_build import BUILD_TIMEOUT_S, BuildError

# The CPython that componentize-py 0.25.1 embeds (the guest reports sys.version 3.14.0).
GUEST_PYTHON_VERSION = "3.14"
PIP_OPTIONS = (
    "--no-compile",
    "--no-input",
    "--only-binary=:all:",
    "--platform", "any",
    "--implementation", "py",
    "--abi", "none",
    "--python-version", GUEST_PYTHON_VERSION,
)  # fmt: skip
STAMP = ".circuit-requirements"
NATIVE = re.compile(r"\.(so|pyd|dylib|dll)(\.[0-9.]*)?$", re.IGNORECASE)
SKIPPED = ("__pycache__", "*.pyc")
PIP_ERROR_LINES = 20


def vendor_requirements(circuit_dir: Path, requirements: Sequence[str], target: Path) -> list[Path]:
    """Materialise ``requirements`` into ``target`` and return the import roots to pass to
    componentize-py as ``extra_paths`` (``[]`` when there is nothing to bundle).

    Unchanged inputs (the entries, and the bytes of wheel files and local sources) leave
    ``target`` as it is; otherwise it is rebuilt from scratch. ``target`` is replaced only
    if it is empty or was written by this function.
    """
    if not requirements:
        return []
    circuit_dir = Path(circuit_dir).resolve()
    target = Path(target).resolve()
    sources = [(entry, _local_source(circuit_dir, entry)) for entry in requirements]
    stamp = _stamp(sources)
    if (target / STAMP).is_file() and (target / STAMP).read_text(encoding="utf-8") == stamp:
        return [target]
    if target.exists() and not (target.is_dir() and ((target / STAMP).is_file() or not any(target.iterdir()))):
        raise BuildError(f"{target} exists and was not written by the dependency build; remove it or build elsewhere")
    target.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=f".{target.name}-", dir=target.parent))
    try:
        pip_args = [str(source) if source is not None else entry for entry, source in sources if _via_pip(entry)]
        if pip_args:
            _pip_install(pip_args, staging)
        owners = _distribution_files(staging)
        for entry, source in sources:
            if source is not None and not _via_pip(entry):
                owners.update(_copy_local(entry, source, staging))
        _reject_native(staging, owners)
        (staging / STAMP).write_text(stamp, encoding="utf-8")
        shutil.rmtree(target, ignore_errors=True)
        staging.rename(target)
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    return [target]


def _via_pip(entry: str) -> bool:
    path = requirement_path(entry)
    return path is None or path.suffix == ".whl"


def _local_source(circuit_dir: Path, entry: str) -> Path | None:
    """The file or directory a path entry names, which must exist inside the circuit directory."""
    path = requirement_path(entry)
    if path is None:
        return None
    if path.is_absolute() or ".." in path.parts or "\\" in entry:
        raise BuildError(f"python.requirements: {entry!r} must be a '/' path relative to {circuit_dir}, without '..'")
    source = (circuit_dir / path).resolve()
    if not source.is_relative_to(circuit_dir) or source == circuit_dir:
        raise BuildError(f"python.requirements: {entry!r} resolves to {source}, outside the circuit directory")
    if not source.exists():
        raise BuildError(f"python.requirements: {entry!r}: {source} does not exist")
    if path.suffix == ".whl" and not source.is_file():
        raise BuildError(f"python.requirements: {entry!r}: {source} is not a wheel file")
    if path.suffix != ".whl" and source.is_file() and source.suffix != ".py":
        raise BuildError(f"python.requirements: {entry!r}: a local file must be a .py module or a .whl wheel")
    return source


def _stamp(sources: Sequence[tuple[str, Path | None]]) -> str:
    """A digest of everything the build depends on: the options, the entries and local bytes."""
    digest = hashlib.sha256(repr(PIP_OPTIONS).encode())
    for entry, source in sources:
        digest.update(b"\0entry\0" + entry.encode())
        for relative, path in _files(entry, source) if source is not None else ():
            digest.update(b"\0file\0" + relative.encode() + b"\0" + path.read_bytes())
    return digest.hexdigest()


def _files(entry: str, source: Path) -> list[tuple[str, Path]]:
    """The files of a local source in a stable order, as (path relative to ``source``, path).

    Symlinks inside a vendored directory are refused: the copy must be exactly what was hashed,
    and must not reach outside the circuit directory.
    """
    if source.is_file():
        return [(source.name, source)]
    found: list[tuple[str, Path]] = []
    for root, dirs, names in os.walk(source):
        dirs[:] = sorted(d for d in dirs if d != "__pycache__")
        for name in [*dirs, *names]:
            if (Path(root) / name).is_symlink():
                raise BuildError(f"python.requirements: {entry!r}: {Path(root) / name} is a symlink; vendor real files")
        for name in sorted(names):
            if not name.endswith(".pyc"):
                path = Path(root) / name
                found.append((path.relative_to(source).as_posix(), path))
    return found


def _pip_install(args: Sequence[str], target: Path) -> None:
    command = [sys.executable, "-m", "pip", "install", "--target", str(target), *PIP_OPTIONS, *args]
    try:
        done = subprocess.run(command, capture_output=True, text=True, timeout=BUILD_TIMEOUT_S, check=False)
    except subprocess.TimeoutExpired as exc:
        raise BuildError(f"pip took longer than {BUILD_TIMEOUT_S} s installing {', '.join(args)}") from exc
    if done.returncode != 0:
        lines = (done.stderr or done.stdout).strip().splitlines()
        tail = "\n".join(line for line in lines[-PIP_ERROR_LINES:] if not line.startswith("WARNING: Location"))
        raise BuildError(
            f"pip could not install the [python] requirements ({', '.join(args)}). Only pure-Python wheels "
            f"(py3-none-any) for Python {GUEST_PYTHON_VERSION} can be bundled; packages published only as "
            f"source or with native code cannot.\n{tail}"
        )


def _distribution_files(site: Path) -> dict[str, str]:
    """Which distribution installed each file (from the ``RECORD`` of every ``*.dist-info``)."""
    owners: dict[str, str] = {}
    for record in sorted(site.glob("*.dist-info/RECORD")):
        name = record.parent.name.removesuffix(".dist-info")
        for line in record.read_text(encoding="utf-8", errors="replace").splitlines():
            path = line.split(",", 1)[0]
            if path:
                owners[Path(path).as_posix()] = name
    return owners


def _copy_local(entry: str, source: Path, site: Path) -> dict[str, str]:
    """Copy a local module, package (a directory with ``__init__.py``) or import root (any
    other directory: its contents) into ``site``; two sources may not provide the same name."""
    if source.is_file() or (source / "__init__.py").is_file():
        items = [(source.name, source)]
    else:
        items = [(child.name, child) for child in sorted(source.iterdir()) if child.name != "__pycache__"]
    copied: dict[str, str] = {}
    for name, path in items:
        destination = site / name
        if destination.exists():
            raise BuildError(f"python.requirements: {entry!r} provides {name!r}, which another requirement provides")
        try:
            if path.is_dir():
                shutil.copytree(path, destination, ignore=shutil.ignore_patterns(*SKIPPED))
            else:
                shutil.copy2(path, destination)
        except OSError as exc:
            raise BuildError(f"python.requirements: {entry!r}: cannot copy {path}: {exc}") from exc
        for relative, _ in _files(entry, destination):
            copied[f"{name}/{relative}" if destination.is_dir() else name] = repr(entry)
    return copied


def _reject_native(site: Path, owners: dict[str, str]) -> None:
    for path in sorted(site.rglob("*")):
        if path.is_file() and NATIVE.search(path.name):
            relative = path.relative_to(site).as_posix()
            owner = owners.get(relative, "an unknown distribution")
            raise BuildError(
                f"python.requirements: {owner} is not pure Python: it contains {relative}. "
                "Only pure-Python packages can run in the sandbox (the guest is CPython compiled to "
                "WebAssembly and cannot load native extensions)."
            )
