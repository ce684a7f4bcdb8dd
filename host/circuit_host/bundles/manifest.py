"""``circuit.toml``: what a circuit is, what it handles, and what it may use.

The model is strict (no coercion, no unknown keys) and every error is a ``Rejected`` naming
the key, e.g. ``circuit.toml: limits.fuell: unknown limit``. See ``README.md`` here for the
reference. ``[schema]`` is validated by the CircuitDB manifest loader; ``[tests]`` is kept
as an opaque table for the test framework. ``[python]`` is checked here only for its form; the
Python build (``circuit_host.toolchain.python_deps``) resolves what its entries name.
"""

from __future__ import annotations

import re
import tomllib
from collections.abc import Mapping
from pathlib import Path, PurePosixPath
from typing import Annotated, Any, Literal
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from croniter import croniter
from pydantic import AfterValidator, BaseModel, ConfigDict, Field, StringConstraints, ValidationError, field_validator

from ..circuitdb.manifest import parse_schema
from ..circuitdb.store import SchemaChanges
from ..errors import Rejected
from ..execution.callout_policy import CREDENTIAL_PATTERN, HostPattern
from ..execution.events import Operation
from ..execution.limits import RESOURCES, LimitsProfile

NAME_PATTERN = r"^[a-z][a-z0-9_-]{0,62}$"
# Semantic versioning 2.0: MAJOR.MINOR.PATCH with optional pre-release and build metadata.
VERSION_PATTERN = (
    r"^(0|[1-9]\d*)\.(0|[1-9]\d*)\.(0|[1-9]\d*)"
    r"(?:-((?:0|[1-9]\d*|\d*[a-zA-Z-][0-9a-zA-Z-]*)(?:\.(?:0|[1-9]\d*|\d*[a-zA-Z-][0-9a-zA-Z-]*))*))?"
    r"(?:\+([0-9a-zA-Z-]+(?:\.[0-9a-zA-Z-]+)*))?$"
)
OBJECT_PATTERN = r"^[A-Za-z][A-Za-z0-9_]{0,79}$"
TABLES = ("circuit", "triggers", "schedules", "limits", "callouts", "credentials", "python", "schema", "tests")
MAX_SCHEDULES = 20
MAX_REQUIREMENTS = 100
MAX_REQUIREMENT_LENGTH = 300
# ``name @ url`` (PEP 508 direct reference): a specifier even though it contains '/'.
_DIRECT_REFERENCE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]*\s*(\[[^\]]*\])?\s*@")

_STRICT = ConfigDict(frozen=True, extra="forbid", strict=True)


class CircuitInfo(BaseModel):
    """``[circuit]``: identity of the circuit; (name, version) names one immutable bundle."""

    model_config = _STRICT

    name: str = Field(pattern=NAME_PATTERN)
    version: str = Field(pattern=VERSION_PATTERN)
    description: str = Field("", max_length=2000)


class TriggerSpec(BaseModel):
    """``[[triggers]]``: the record changes the circuit handles. Lower ``order`` runs first."""

    model_config = _STRICT

    object: str = Field(pattern=OBJECT_PATTERN)
    operations: tuple[Operation, ...] = Field(min_length=1)
    order: int = 0

    @field_validator("operations")
    @classmethod
    def _distinct(cls, value: tuple[str, ...]) -> tuple[str, ...]:
        if len(set(value)) != len(value):
            raise ValueError("operations must not repeat")
        return value


class ScheduleSpec(BaseModel):
    """``[[schedules]]``: run a circuit on a cron schedule, once per tick across the fleet.

    ``circuit`` defaults to this bundle's own; ``missed`` says what a worker does after downtime:
    ``once`` runs the newest missed tick once, ``skip`` drops ticks older than a minute.
    """

    model_config = _STRICT

    name: str = Field("", pattern=r"^([a-z][a-z0-9_-]{0,62})?$")
    cron: str = Field(min_length=1, max_length=200)
    timezone: str = Field("UTC", min_length=1, max_length=64)
    circuit: str | None = Field(None, pattern=NAME_PATTERN)
    payload: dict[str, Any] | None = None
    missed: Literal["once", "skip"] = "once"

    @field_validator("cron")
    @classmethod
    def _cron(cls, value: str) -> str:
        if not croniter.is_valid(value) or len(value.split()) not in (5, 6):
            raise ValueError(f"{value!r} is not a cron expression (5 fields, or 6 with seconds last)")
        return value

    @field_validator("timezone")
    @classmethod
    def _timezone(cls, value: str) -> str:
        try:
            ZoneInfo(value)
        except (ZoneInfoNotFoundError, ValueError):
            raise ValueError(f"unknown time zone {value!r} (an IANA name, e.g. Europe/Paris)") from None
        return value


class Callouts(BaseModel):
    """``[callouts]``: the hosts the circuit may call, as ``https://host[:port]`` patterns."""

    model_config = _STRICT

    allowed_hosts: tuple[str, ...] = ()


class Credentials(BaseModel):
    """``[credentials]``: named credentials the circuit uses; their values live in host config."""

    model_config = _STRICT

    names: tuple[str, ...] = ()

    @field_validator("names")
    @classmethod
    def _names(cls, value: tuple[str, ...]) -> tuple[str, ...]:
        for name in value:
            if not re.match(CREDENTIAL_PATTERN, name):
                raise ValueError(f"credential name {name!r} must match {CREDENTIAL_PATTERN}")
        if len(set(value)) != len(value):
            raise ValueError("names must not repeat")
        return value


def requirement_path(entry: str) -> PurePosixPath | None:
    """The path (relative to the circuit directory) a ``[python] requirements`` entry names, or
    None when the entry is a pip requirement specifier.

    An entry is a path when it ends in ``.whl`` or ``.py`` or contains ``/`` (write ``./mylib``
    for a directory next to ``circuit.toml``); ``name @ url`` stays a specifier.
    """
    if _DIRECT_REFERENCE.match(entry) or "://" in entry:
        return None
    if "/" in entry or entry.endswith((".whl", ".py")):
        return PurePosixPath(entry)
    return None


def _check_requirement(entry: str) -> str:
    if entry != entry.strip() or any(ord(c) < 32 or ord(c) == 127 for c in entry):
        raise ValueError("must not have surrounding spaces or control characters")
    if entry.startswith("-"):
        raise ValueError(f"{entry!r}: pip options are not allowed, only requirements and paths")
    path = requirement_path(entry)
    if path is None:
        return entry
    if "\\" in entry or re.match(r"^[A-Za-z]:", entry):
        raise ValueError(f"{entry!r}: write paths with '/', relative to the circuit directory")
    if path.is_absolute():
        raise ValueError(f"{entry!r}: must be a path relative to the circuit directory, not absolute")
    if ".." in path.parts:
        raise ValueError(f"{entry!r}: must stay inside the circuit directory (no '..')")
    if path == PurePosixPath("."):
        raise ValueError(f"{entry!r}: names the circuit directory itself, which is already on the import path")
    return entry


Requirement = Annotated[
    str,
    StringConstraints(min_length=1, max_length=MAX_REQUIREMENT_LENGTH),
    AfterValidator(_check_requirement),
]


class PythonDeps(BaseModel):
    """``[python]``: the pure-Python dependencies a Python circuit bundles (ignored for Zig)."""

    model_config = _STRICT

    requirements: tuple[Requirement, ...] = Field((), max_length=MAX_REQUIREMENTS)

    @field_validator("requirements")
    @classmethod
    def _distinct(cls, value: tuple[str, ...]) -> tuple[str, ...]:
        seen: set[str] = set()
        for entry in value:
            path = requirement_path(entry)
            key = f"path:{path}" if path is not None else entry.lower().replace(" ", "")
            if key in seen:
                raise ValueError(f"{entry!r} is listed twice")
            seen.add(key)
        return value


class Manifest(BaseModel):
    """A parsed, validated ``circuit.toml``. Build one with ``parse_manifest`` or ``read_manifest``."""

    model_config = ConfigDict(frozen=True, extra="forbid", strict=True, populate_by_name=True)

    circuit: CircuitInfo
    triggers: tuple[TriggerSpec, ...] = ()
    schedules: tuple[ScheduleSpec, ...] = Field((), max_length=MAX_SCHEDULES)
    limits: dict[str, int] = Field(default_factory=dict)
    callouts: Callouts = Callouts()
    credentials: Credentials = Credentials()
    python: PythonDeps = PythonDeps()
    schema_table: dict[str, Any] = Field(default_factory=dict, alias="schema")
    tests: dict[str, Any] = Field(default_factory=dict)

    @property
    def name(self) -> str:
        return self.circuit.name

    @property
    def version(self) -> str:
        return self.circuit.version

    def allowed_hosts(self) -> tuple[HostPattern, ...]:
        return tuple(HostPattern.parse(text) for text in self.callouts.allowed_hosts)

    def schema_changes(self) -> SchemaChanges:
        """The custom objects and fields the circuit needs (``[schema]``)."""
        return parse_schema({"schema": self.schema_table})

    def limits_profile(self, ceiling: LimitsProfile) -> LimitsProfile:
        """The execution budget: defaults capped by ``ceiling``, then the manifest's overrides.

        An override above the tenant's ceiling is rejected naming the limit; it is never clamped,
        so a circuit does not silently run with less than it asked for.
        """
        base = LimitsProfile().capped_by(ceiling).model_dump()
        for name, value in self.limits.items():
            maximum = getattr(ceiling, name)
            if value > maximum:
                raise Rejected(f"circuit.toml: limits.{name}: {value} is above the tenant's maximum of {maximum}")
            base[name] = value
        try:
            return LimitsProfile().with_overrides(base)
        except Rejected as exc:
            raise Rejected(f"circuit.toml: limits.{str(exc).removeprefix('invalid limits: ')}") from None


def read_manifest(path: Path) -> Manifest:
    """Read and validate the ``circuit.toml`` at ``path``."""
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise Rejected(f"{path}: cannot read manifest: {exc}") from None
    return parse_manifest(text, path.name)


def parse_manifest(text: str, source: str = "circuit.toml") -> Manifest:
    """Parse TOML text into a validated ``Manifest``."""
    try:
        document = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise Rejected(f"{source}: invalid TOML: {exc}") from None
    return manifest_from_document(document, source)


def manifest_from_document(document: Mapping[str, Any], source: str = "circuit.toml") -> Manifest:
    """Validate an already parsed manifest table."""
    for key in document:
        if key not in TABLES:
            raise Rejected(f"{source}: unknown table [{key}] (expected one of {', '.join(TABLES)})")
    if "circuit" not in document:
        raise Rejected(f"{source}: [circuit] is required (name and version)")
    for key in ("circuit", "limits", "callouts", "credentials", "python", "schema", "tests"):
        if key in document and not isinstance(document[key], Mapping):
            raise Rejected(f"{source}: {key} must be a table ([{key}])")
    for key in ("triggers", "schedules"):
        if key in document and not (
            isinstance(document[key], list) and all(isinstance(t, Mapping) for t in document[key])
        ):
            raise Rejected(f"{source}: {key} must be an array of tables ([[{key}]])")
    for name, value in document.get("limits", {}).items():
        if name not in RESOURCES:
            raise Rejected(f"{source}: limits.{name}: unknown limit (expected one of {', '.join(RESOURCES)})")
        if not isinstance(value, int) or isinstance(value, bool):
            raise Rejected(f"{source}: limits.{name}: must be an integer, not {type(value).__name__}")
    try:
        opaque = {key: dict(document[key]) for key in ("schema", "tests") if key in document}
        schedules = [
            {**s, "payload": dict(s["payload"])} if isinstance(s.get("payload"), Mapping) else s
            for s in document.get("schedules", [])
        ]  # a payload stays as written: JSON-like
        manifest = Manifest.model_validate(
            {**_tuples(document), **opaque, **({"schedules": tuple(schedules)} if schedules else {})}
        )
    except ValidationError as exc:
        raise Rejected(_describe(exc, source)) from None
    try:
        LimitsProfile().with_overrides(manifest.limits)
    except Rejected as exc:
        raise Rejected(f"{source}: limits.{str(exc).removeprefix('invalid limits: ')}") from None
    for i, text in enumerate(manifest.callouts.allowed_hosts):
        try:
            HostPattern.parse(text)
        except Rejected as exc:
            raise Rejected(f"{source}: callouts.allowed_hosts[{i}]: {exc}") from None
    names = [schedule.name for schedule in manifest.schedules if schedule.name]
    if len(names) != len(set(names)):
        raise Rejected(f"{source}: schedules: two schedules have the same name")
    parse_schema(document, source)
    return manifest


def _tuples(value: Any) -> Any:
    """TOML arrays become tuples, so strict validation accepts them for tuple fields."""
    if isinstance(value, Mapping):
        return {k: _tuples(v) for k, v in value.items()}
    if isinstance(value, list):
        return tuple(_tuples(v) for v in value)
    return value


_MESSAGES = {
    "extra_forbidden": "unknown key",
    "missing": "is required",
    "tuple_type": "must be an array",
}


def _describe(exc: ValidationError, source: str) -> str:
    err = exc.errors()[0]
    where = ""
    for part in err["loc"]:
        if isinstance(part, int):
            where += f"[{part}]"
        else:
            where += f".{part}" if where else str(part)
    message = _MESSAGES.get(err["type"], err["msg"])
    if err["type"] == "string_pattern_mismatch" and where == "circuit.version":
        message = "must be a semantic version (MAJOR.MINOR.PATCH, e.g. 1.0.0)"
    elif err["type"] == "string_pattern_mismatch" and where == "circuit.name":
        message = "must be lower case letters, digits, '_' or '-', starting with a letter (at most 63)"
    elif err["type"] == "value_error":
        message = str(err["msg"]).removeprefix("Value error, ")
    return f"{source}: {where}: {message}" if where else f"{source}: {message}"
