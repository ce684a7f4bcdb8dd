"""Bundle files: packed reproducibly, and read as hostile input."""

from __future__ import annotations

import hashlib
import io
import zipfile
from pathlib import Path

import pytest
import wasmtime

from circuit_host.bundles import pack_bundle, pack_bytes, read_bundle
from circuit_host.errors import Rejected
from circuit_host.execution.limits import LimitsProfile
from circuit_host.sandbox.runtime import Runtime
from tests.conftest import guest_wat

MANIFEST = (
    b'[circuit]\nname = "echo"\nversion = "1.0.0"\n[[triggers]]\nobject = "Contact"\noperations = ["after_insert"]\n'
)


@pytest.fixture(scope="module")
def echo_wasm() -> bytes:
    return bytes(wasmtime.wat2wasm(guest_wat("echo")))


def zip_of(*members: tuple[str, bytes], method: int = zipfile.ZIP_DEFLATED) -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", compression=method) as archive:
        for name, content in members:
            archive.writestr(name, content)
    return buffer.getvalue()


def test_pack_then_read(tmp_path: Path, runtime: Runtime, echo_wasm: bytes) -> None:
    (tmp_path / "circuit.toml").write_bytes(MANIFEST)
    (tmp_path / "echo.wasm").write_bytes(echo_wasm)
    path = pack_bundle(tmp_path / "circuit.toml", tmp_path / "echo.wasm", tmp_path / "out")
    assert path.name == "echo-1.0.0.circuit"
    data = path.read_bytes()
    bundle = read_bundle(data, runtime)
    assert bundle.sha256 == hashlib.sha256(data).hexdigest()
    assert (bundle.name, bundle.version, bundle.wasm) == ("echo", "1.0.0", echo_wasm)
    assert bundle.manifest_text == MANIFEST.decode()


def test_packing_is_reproducible(echo_wasm: bytes) -> None:
    assert pack_bytes(MANIFEST, echo_wasm) == pack_bytes(MANIFEST, echo_wasm)


@pytest.mark.filterwarnings("ignore:Duplicate name")
@pytest.mark.parametrize(
    ("members", "message"),
    [
        ((("circuit.toml", MANIFEST),), "module.wasm is missing"),
        ((("module.wasm", b"\0asm"),), "circuit.toml is missing"),
        ((("circuit.toml", MANIFEST), ("module.wasm", b"x"), ("README", b"")), "unexpected member 'README'"),
        ((("circuit.toml", MANIFEST), ("../module.wasm", b"x")), "escapes the bundle"),
        ((("circuit.toml", MANIFEST), ("/module.wasm", b"x")), "absolute path"),
        ((("circuit.toml", MANIFEST), ("sub/module.wasm", b"x")), "unexpected member 'sub/module.wasm'"),
        ((("circuit.toml", MANIFEST), ("circuit.toml", MANIFEST), ("module.wasm", b"x")), "appears twice"),
        ((("circuit.toml", b"\xff\xfe"), ("module.wasm", b"x")), "circuit.toml is not valid UTF-8"),
        ((("circuit.toml", b"[circuit]\nname = 'x'\n"), ("module.wasm", b"x")), "circuit.version: is required"),
        ((("circuit.toml", MANIFEST), ("module.wasm", b"not wasm")), "bundle: module.wasm: "),
    ],
)
def test_malformed_bundles_are_rejected(runtime: Runtime, members: tuple[tuple[str, bytes], ...], message: str) -> None:
    with pytest.raises(Rejected) as caught:
        read_bundle(zip_of(*members), runtime)
    assert message in str(caught.value)


def test_not_a_zip(runtime: Runtime) -> None:
    with pytest.raises(Rejected, match=r"bundle is not a valid zip file"):
        read_bundle(b"\0asm not a zip", runtime)


def test_a_module_the_runtime_refuses_is_rejected_with_its_reason(runtime: Runtime) -> None:
    wasi = bytes(wasmtime.wat2wasm(guest_wat("imports_wasi")))
    with pytest.raises(Rejected, match=r"bundle: module.wasm: import 'wasi.*not part of the circuit ABI"):
        read_bundle(pack_bytes(MANIFEST, wasi), runtime)


def test_initial_memory_is_checked_against_the_manifest_memory_limit(runtime: Runtime, echo_wasm: bytes) -> None:
    manifest = MANIFEST + b"[limits]\nmemory_bytes = 65536\n"  # echo declares two 64 KiB pages
    with pytest.raises(Rejected, match=r"bundle: module.wasm: module declares 131072 bytes of initial memory"):
        read_bundle(pack_bytes(manifest, echo_wasm), runtime)
    assert read_bundle(pack_bytes(MANIFEST, echo_wasm), runtime).wasm == echo_wasm


def test_limits_above_the_ceiling_are_rejected(runtime: Runtime, echo_wasm: bytes) -> None:
    data = pack_bytes(MANIFEST + b"[limits]\nqueries = 500\n", echo_wasm)
    with pytest.raises(Rejected, match=r"limits\.queries: 500 is above"):
        read_bundle(data, runtime, ceiling=LimitsProfile())


def test_an_oversized_bundle_is_rejected_before_unzipping(runtime: Runtime, echo_wasm: bytes) -> None:
    data = pack_bytes(MANIFEST, echo_wasm)
    with pytest.raises(Rejected, match=f"bundle is {len(data)} bytes, over the limit of 100"):
        read_bundle(data, runtime, max_bytes=100)


def test_a_zip_bomb_is_refused_by_its_declared_size(runtime: Runtime) -> None:
    bomb = zip_of(("circuit.toml", MANIFEST), ("module.wasm", b"\0" * (runtime.max_module_bytes + 1)))
    assert len(bomb) < 100_000
    with pytest.raises(Rejected, match=r"module.wasm is .* bytes uncompressed, over the limit"):
        read_bundle(bomb, runtime)


def test_a_zip_bomb_that_lies_about_its_size_is_cut_off(runtime: Runtime) -> None:
    """A header claiming a small size while the stream inflates to more fails without inflating it all."""
    manifest = MANIFEST + b"#" + b" " * 300_000
    data = bytearray(zip_of(("circuit.toml", manifest), ("module.wasm", b"x")))
    real = len(manifest).to_bytes(4, "little")
    fake = (100).to_bytes(4, "little")
    data = bytearray(bytes(data).replace(real, fake))  # in the local header and the central directory
    with pytest.raises(Rejected, match=r"circuit.toml"):
        read_bundle(bytes(data), runtime)


def test_an_oversized_manifest_is_rejected(runtime: Runtime) -> None:
    manifest = MANIFEST + b"#" + b"x" * 300_000 + b"\n"
    with pytest.raises(Rejected, match=r"circuit.toml is .* bytes uncompressed, over the limit"):
        read_bundle(zip_of(("circuit.toml", manifest), ("module.wasm", b"x")), runtime)
