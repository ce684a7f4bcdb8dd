"""The Zig msgpack codec: its own unit tests, and the shared vectors in abi/vectors/msgpack.json
decoded to their JSON form and re-encoded byte for byte (so guest bytes equal host bytes)."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

from tests.guest_sdk.conftest import REPO, SDK

VECTORS = REPO / "abi" / "vectors" / "msgpack.json"


def zig_test(*args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "ziglang", "test", *args],
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )


def test_zig_unit_tests_pass() -> None:
    done = zig_test("msgpack.zig", cwd=SDK)
    assert done.returncode == 0, done.stderr
    assert re.search(r"All \d+ tests passed", done.stderr + done.stdout)


def test_shared_vectors_round_trip(tmp_path: Path) -> None:
    # @embedFile only reads inside a module's own directory, so the vectors get a tiny module.
    (tmp_path / "msgpack.json").write_bytes(VECTORS.read_bytes())
    (tmp_path / "vectors.zig").write_text('pub const json = @embedFile("msgpack.json");\n')
    done = zig_test(
        "--dep", "msgpack", "--dep", "vectors", "-Mroot=msgpack_vectors_test.zig",
        "-Mmsgpack=msgpack.zig",
        f"-Mvectors={tmp_path / 'vectors.zig'}",
        cwd=SDK,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    assert "All 1 tests passed" in done.stderr + done.stdout
