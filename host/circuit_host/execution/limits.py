"""Governor limits: the per-execution budget of every resource a circuit can consume.

Names and defaults mirror Apex's governor limits where one exists. A profile is
immutable; per-execution overrides (a CLI JSON file, a bundle manifest) produce a new
one through ``LimitsProfile.with_overrides``.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from ..errors import Rejected

MIB = 1024 * 1024


class LimitsProfile(BaseModel):
    """The budget of one execution. Every field is a hard cap."""

    model_config = ConfigDict(frozen=True, extra="forbid", strict=True)

    fuel: int = Field(5_000_000_000, ge=1, description="Deterministic CPU budget (wasmtime fuel units).")
    timeout_ms: int = Field(10_000, ge=1, le=3_600_000, description="Wall-clock deadline.")
    memory_bytes: int = Field(128 * MIB, ge=64 * 1024, le=4096 * MIB, description="Linear memory cap.")
    queries: int = Field(100, ge=0, description="records.query calls.")
    query_rows: int = Field(50_000, ge=0, description="Rows returned by all queries.")
    query_bytes: int = Field(16 * MIB, ge=0, description="Size of the msgpack results of all queries.")
    dml_statements: int = Field(150, ge=0, description="records.dml calls.")
    dml_rows: int = Field(10_000, ge=0, description="Rows processed by all DML statements.")
    callouts: int = Field(100, ge=0, description="http.callout calls, allowed or refused.")
    callout_time_ms: int = Field(120_000, ge=0, description="Total time spent in callouts.")
    log_bytes: int = Field(1 * MIB, ge=0, description="Bytes of the stored debug log: log.write lines and the host's.")
    input_bytes: int = Field(4 * MIB, ge=0, description="Size of the msgpack event handed to the guest.")
    output_bytes: int = Field(4 * MIB, ge=0, description="Size of the msgpack result the guest returns.")
    async_jobs: int = Field(50, ge=0, description="jobs.enqueue calls (queueable circuits), as Apex's 50.")

    def with_overrides(self, overrides: dict[str, Any]) -> LimitsProfile:
        """Return a copy with ``overrides`` applied; unknown names or bad values are rejected."""
        try:
            return LimitsProfile.model_validate({**self.model_dump(), **overrides})
        except ValidationError as exc:
            raise Rejected(f"invalid limits: {_describe(exc)}") from None

    def capped_by(self, ceiling: LimitsProfile) -> LimitsProfile:
        """Each limit lowered to ``ceiling`` where the ceiling is lower."""
        return LimitsProfile.model_validate(
            {name: min(getattr(self, name), getattr(ceiling, name)) for name in type(self).model_fields}
        )

    @classmethod
    def from_json_file(cls, path: Path) -> LimitsProfile:
        """Load a JSON object holding any subset of the limit names."""
        try:
            data = json.loads(path.read_text(encoding="utf-8"))
        except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
            raise Rejected(f"cannot read limits file {path}: {exc}") from None
        if not isinstance(data, dict):
            raise Rejected(f"limits file {path} must hold a JSON object of limit names to integers")
        return cls().with_overrides(data)


RESOURCES: tuple[str, ...] = tuple(LimitsProfile.model_fields)

RESOURCES_SINCE_ABI: dict[str, tuple[int, ...]] = {"async_jobs": (1, 1, 0)}
"""Resources a guest sees in ``limits.usage`` only from that ABI version on. The 1.0.0 WIT lists the
map's resources and v1 schemas never gain fields (abi/README.md §3.1, §3.6), so a resource that came
with a newer world is reported to the modules of that world; the host still governs and records it
for every execution."""


def guest_resources(abi_version: str) -> tuple[str, ...]:
    """The resources ``limits.usage`` reports to a module of ``abi_version`` (``"1.0.0"``, ``"1.1.0"``)."""
    version = tuple(int(part) for part in abi_version.split("."))
    return tuple(name for name in RESOURCES if RESOURCES_SINCE_ABI.get(name, (1, 0, 0)) <= version)


ASYNCHRONOUS = LimitsProfile(fuel=30_000_000_000, timeout_ms=60_000, memory_bytes=256 * MIB, queries=200)
"""The budget of an execution a job runs (a queueable, a scheduled circuit, a batch's start, chunk
or finish), as Apex raises its limits for asynchronous Apex: twice the queries (200) and the memory
(256 MiB), six times the CPU (60 s wall clock, 30 billion fuel); every other limit as above. It is
the platform's, like Apex's: neither a manifest nor a tenant setting changes it."""


def _describe(exc: ValidationError) -> str:
    return "; ".join(f"{'.'.join(str(p) for p in err['loc'])}: {err['msg']}" for err in exc.errors())
