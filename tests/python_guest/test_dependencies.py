"""``[python] requirements``: pure-Python dependencies are vendored into one import root and
bundled into the component; anything native, missing or outside the circuit is a BuildError."""

from __future__ import annotations

import base64
import hashlib
import time
import zipfile
from pathlib import Path

import pytest

from circuit_host.abi.codec import encode
from circuit_host.sandbox.components import CircuitComponent
from circuit_host.sandbox.runtime import Runtime
from circuit_host.toolchain.python_build import build_python_package
from circuit_host.toolchain.python_deps import STAMP, vendor_requirements
from circuit_host.toolchain.zig_build import BuildError
from tests.contexts import make_context


def make_wheel(
    directory: Path, name: str, files: dict[str, str | bytes], version: str = "1.0", requires: tuple[str, ...] = ()
) -> Path:
    """A minimal wheel built by hand: the files, METADATA, WHEEL (py3-none-any) and RECORD."""
    info = f"{name}-{version}.dist-info"
    metadata = f"Metadata-Version: 2.1\nName: {name}\nVersion: {version}\n"
    metadata += "".join(f"Requires-Dist: {requirement}\n" for requirement in requires)
    members: dict[str, bytes] = {path: data.encode() if isinstance(data, str) else data for path, data in files.items()}
    members[f"{info}/METADATA"] = metadata.encode()
    members[f"{info}/WHEEL"] = b"Wheel-Version: 1.0\nGenerator: hand\nRoot-Is-Purelib: true\nTag: py3-none-any\n"
    record = ""
    for path, data in members.items():
        digest = base64.urlsafe_b64encode(hashlib.sha256(data).digest()).rstrip(b"=").decode()
        record += f"{path},sha256={digest},{len(data)}\n"
    members[f"{info}/RECORD"] = (record + f"{info}/RECORD,,\n").encode()
    wheel = directory / f"{name}-{version}-py3-none-any.whl"
    directory.mkdir(parents=True, exist_ok=True)
    with zipfile.ZipFile(wheel, "w") as archive:
        for path, data in members.items():
            archive.writestr(path, data)
    return wheel


def write(path: Path, text: str) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)
    return path


@pytest.fixture
def offline_index(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """pip resolves from a local directory of wheels only, so these tests need no network."""
    links = tmp_path / "links"
    links.mkdir()
    monkeypatch.setenv("PIP_NO_INDEX", "1")
    monkeypatch.setenv("PIP_FIND_LINKS", str(links))
    return links


def test_no_requirements_bundle_nothing(tmp_path: Path) -> None:
    assert vendor_requirements(tmp_path, [], tmp_path / "build" / "site-packages") == []
    assert not (tmp_path / "build").exists()


def test_local_packages_modules_and_import_roots_are_copied_as_they_are(tmp_path: Path) -> None:
    circuit = tmp_path / "circuit"
    write(circuit / "vendor" / "mylib" / "__init__.py", "VALUE = 1\n")
    write(circuit / "vendor" / "mylib" / "data.txt", "kept\n")
    write(circuit / "vendor" / "mylib" / "__pycache__" / "x.cpython-311.pyc", "stale")
    write(circuit / "helpers.py", "def helper(): return 2\n")
    write(circuit / "src" / "alpha.py", "A = 3\n")
    write(circuit / "src" / "beta" / "__init__.py", "")
    target = circuit / "build" / "site-packages"

    roots = vendor_requirements(circuit, ["vendor/mylib", "./helpers.py", "./src"], target)

    assert roots == [target]
    assert sorted(p.relative_to(target).as_posix() for p in target.rglob("*") if p.is_file()) == [
        STAMP,
        "alpha.py",
        "beta/__init__.py",
        "helpers.py",
        "mylib/__init__.py",
        "mylib/data.txt",
    ]


def test_a_wheel_file_is_installed_with_its_pure_python_dependencies(tmp_path: Path, offline_index: Path) -> None:
    circuit = tmp_path / "circuit"
    make_wheel(offline_index, "quiet", {"quiet/__init__.py": "def hush(t): return t.lower()\n"})
    make_wheel(circuit / "wheels", "shout", {"shout/__init__.py": "import quiet\n"}, requires=("quiet",))
    target = tmp_path / "site"

    vendor_requirements(circuit, ["wheels/shout-1.0-py3-none-any.whl"], target)

    assert (target / "shout" / "__init__.py").is_file()
    assert (target / "quiet" / "__init__.py").is_file()  # resolved from the index, not declared
    assert not list(target.rglob("*.pyc"))


def test_unchanged_inputs_are_not_reinstalled_and_changed_ones_are(tmp_path: Path, offline_index: Path) -> None:
    circuit = tmp_path / "circuit"
    make_wheel(circuit / "wheels", "shout", {"shout/__init__.py": "V = 1\n"})
    write(circuit / "lib" / "mylib" / "__init__.py", "V = 1\n")
    requirements = ["wheels/shout-1.0-py3-none-any.whl", "lib/mylib"]
    target = tmp_path / "site"
    vendor_requirements(circuit, requirements, target)
    write(target / "marker", "left by the first build")

    vendor_requirements(circuit, requirements, target)
    assert (target / "marker").exists()

    write(circuit / "lib" / "mylib" / "__init__.py", "V = 2\n")
    vendor_requirements(circuit, requirements, target)
    assert not (target / "marker").exists()
    assert (target / "mylib" / "__init__.py").read_text() == "V = 2\n"

    write(target / "marker", "")
    make_wheel(circuit / "wheels", "shout", {"shout/__init__.py": "V = 2\n"})
    vendor_requirements(circuit, requirements, target)
    assert not (target / "marker").exists()
    assert (target / "shout" / "__init__.py").read_text() == "V = 2\n"


def test_a_wheel_with_a_native_library_is_rejected(tmp_path: Path, offline_index: Path) -> None:
    circuit = tmp_path / "circuit"
    files: dict[str, str | bytes] = {
        "fast/__init__.py": "",
        "fast/_speedups.cpython-314-x86_64-linux-gnu.so": b"\x7fELF",
    }
    make_wheel(circuit / "wheels", "fast", files)
    target = tmp_path / "site"

    with pytest.raises(BuildError) as caught:
        vendor_requirements(circuit, ["wheels/fast-1.0-py3-none-any.whl"], target)

    message = str(caught.value)
    assert "fast-1.0 is not pure Python" in message
    assert "fast/_speedups.cpython-314-x86_64-linux-gnu.so" in message
    assert "Only pure-Python packages can run in the sandbox" in message
    assert not target.exists()
    assert [p.name for p in tmp_path.iterdir()] == ["circuit", "links"]  # no staging directory left behind


def test_a_vendored_directory_with_a_native_library_is_rejected(tmp_path: Path) -> None:
    write(tmp_path / "vendor" / "fast" / "__init__.py", "")
    (tmp_path / "vendor" / "fast" / "_native.pyd").write_bytes(b"MZ")
    with pytest.raises(BuildError, match=r"'vendor/fast' is not pure Python: it contains fast/_native\.pyd"):
        vendor_requirements(tmp_path, ["vendor/fast"], tmp_path / "build" / "site-packages")


def test_a_platform_wheel_is_refused_by_pip(tmp_path: Path, offline_index: Path) -> None:
    circuit = tmp_path / "circuit"
    wheel = make_wheel(circuit / "wheels", "fast", {"fast/__init__.py": ""})
    wheel.rename(circuit / "wheels" / "fast-1.0-cp314-cp314-manylinux_2_17_x86_64.whl")
    with pytest.raises(BuildError, match="pip could not install") as caught:
        vendor_requirements(circuit, ["wheels/fast-1.0-cp314-cp314-manylinux_2_17_x86_64.whl"], tmp_path / "site")
    assert "not a supported wheel" in str(caught.value)


def test_a_package_that_does_not_exist_fails_fast_with_pips_reason(tmp_path: Path) -> None:
    started = time.monotonic()
    with pytest.raises(BuildError) as caught:
        vendor_requirements(tmp_path, ["definitely-not-a-package-xyz==0.0.1"], tmp_path / "site")
    assert time.monotonic() - started < 60
    assert "No matching distribution found for definitely-not-a-package-xyz==0.0.1" in str(caught.value)
    assert "Only pure-Python wheels" in str(caught.value)


@pytest.mark.parametrize(
    ("entry", "message"),
    [
        ("../outside/lib", "without '..'"),
        ("/etc/passwd.py", "without '..'"),
        ("./escape", "outside the circuit directory"),  # a symlink out of the circuit
        ("./missing", "does not exist"),
        ("./notes.txt", "a local file must be a .py module or a .whl wheel"),
        ("./vendor/linked", "is a symlink; vendor real files"),
    ],
)
def test_paths_must_name_real_files_inside_the_circuit(tmp_path: Path, entry: str, message: str) -> None:
    circuit = tmp_path / "circuit"
    write(tmp_path / "outside" / "lib" / "__init__.py", "")
    write(circuit / "notes.txt", "")
    (circuit / "escape").symlink_to(tmp_path / "outside" / "lib")
    write(circuit / "vendor" / "linked" / "__init__.py", "")
    (circuit / "vendor" / "linked" / "secret.py").symlink_to(tmp_path / "outside" / "lib" / "__init__.py")
    with pytest.raises(BuildError, match=message) as caught:
        vendor_requirements(circuit, [entry], circuit / "build" / "site-packages")
    assert repr(entry) in str(caught.value)
    assert not (circuit / "build" / "site-packages").exists()


def test_two_requirements_providing_the_same_name_are_rejected(tmp_path: Path) -> None:
    write(tmp_path / "a" / "mylib" / "__init__.py", "")
    write(tmp_path / "b" / "mylib" / "__init__.py", "")
    with pytest.raises(BuildError, match="'b/mylib' provides 'mylib', which another requirement provides"):
        vendor_requirements(tmp_path, ["a/mylib", "b/mylib"], tmp_path / "build" / "site-packages")


def test_a_directory_not_written_by_the_build_is_never_replaced(tmp_path: Path) -> None:
    write(tmp_path / "lib" / "mylib" / "__init__.py", "")
    write(tmp_path / "precious" / "thesis.tex", "years of work")
    with pytest.raises(BuildError, match="was not written by the dependency build"):
        vendor_requirements(tmp_path, ["lib/mylib"], tmp_path / "precious")
    assert (tmp_path / "precious" / "thesis.tex").read_text() == "years of work"


CIRCUIT_TOML = """\
[circuit]
name = "greeter"
version = "1.0.0"

[[triggers]]
object = "Account"
operations = ["after_insert"]

[python]
requirements = ["./vendor/greeting", "wheels/shout-1.0-py3-none-any.whl"]
"""

CIRCUIT_PY = """\
import greeting
import shout
from circuit_sdk import trigger


@trigger("Account", "after_insert")
def greet_accounts(ctx):
    return [shout.shout(greeting.greet(account["Name"])) for account in ctx.new]
"""


@pytest.fixture(scope="module")
def greeter(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """ONE componentize-py build: a circuit importing a vendored package and a wheel's package."""
    circuit = tmp_path_factory.mktemp("deps") / "greeter"
    write(circuit / "circuit.toml", CIRCUIT_TOML)
    write(circuit / "circuit.py", CIRCUIT_PY)
    write(
        circuit / "vendor" / "greeting" / "__init__.py", "def greet(name):\n    return f'hello from greeting, {name}'\n"
    )
    make_wheel(circuit / "wheels", "shout", {"shout/__init__.py": "def shout(text):\n    return text.upper() + '!'\n"})
    return build_python_package(circuit)


def test_a_circuit_runs_the_code_of_its_bundled_dependencies(greeter: Path, component_runtime: Runtime) -> None:
    assert greeter == greeter.parents[1] / "build" / "greeter.wasm"
    assert (greeter.parent / "site-packages" / "shout" / "__init__.py").is_file()
    loaded = component_runtime.load(greeter.read_bytes())
    assert isinstance(loaded, CircuitComponent)
    event = encode({"object": "Account", "operation": "after_insert", "new": [{"Name": "Acme"}, {"Name": "Globex"}]})

    with make_context(label="greeter") as context:
        outcome = component_runtime.invoke(loaded, event, context)

    assert outcome.status == "ok", outcome.error_message
    assert outcome.output == ["HELLO FROM GREETING, ACME!", "HELLO FROM GREETING, GLOBEX!"]
