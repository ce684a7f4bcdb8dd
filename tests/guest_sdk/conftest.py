"""Fixtures for the Zig guest SDK: the examples built once per session, with the real toolchain."""

from __future__ import annotations

from pathlib import Path

import pytest

pytest.importorskip("ziglang", reason="the Zig guest SDK needs the ziglang package")

from circuit_host.build import build_circuit

REPO = Path(__file__).resolve().parents[2]
EXAMPLES = REPO / "examples"
SDK = REPO / "guest_sdk" / "zig"


@pytest.fixture(scope="session")
def example_wasm(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """Both examples compiled (ReleaseSmall) into a temp dir, so tests never touch zig-out/."""
    out = tmp_path_factory.mktemp("examples")
    return {name: build_circuit(EXAMPLES / name, out / name) for name in ("hello", "virtual_lpr")}
