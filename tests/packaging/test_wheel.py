"""The wheel on its own: installed into a fresh virtualenv outside the checkout, it builds and serves.

One wheel and one virtualenv per module (about half a minute: the dependencies come from pip's
index or cache); every command runs with the temporary directory as its working directory and no
PYTHONPATH, so nothing from the checkout can be imported by accident.
"""

from __future__ import annotations

import email
import os
import re
import shutil
import socket
import subprocess
import sys
import threading
import time
import zipfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest

from circuit_host.resources import NOT_SHIPPED, SHIPPED

ROOT = Path(__file__).resolve().parents[2]
STARTUP_TIMEOUT_S = 180  # the first start builds the demo circuit
# What a build reads: the project files and the folders resources.SHIPPED names.
SOURCES = ("pyproject.toml", "setup.py", "MANIFEST.in", "README.md", "host", *SHIPPED)


@dataclass(frozen=True)
class Installed:
    wheel: Path
    venv: Path
    workdir: Path

    def run(self, *args: str, timeout: float = 300) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [str(self.venv / "bin" / args[0]), *args[1:]],
            capture_output=True,
            text=True,
            timeout=timeout,
            cwd=self.workdir,
            env=clean_env(),
        )


def clean_env() -> dict[str, str]:
    return {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "VIRTUAL_ENV", "PYTHONHOME")}


def checked(command: list[str], cwd: Path, timeout: float) -> None:
    done = subprocess.run(command, capture_output=True, text=True, timeout=timeout, cwd=cwd, env=clean_env())
    assert done.returncode == 0, f"{' '.join(command)} failed:\n{done.stdout}\n{done.stderr}"


@pytest.fixture(scope="module")
def installed(tmp_path_factory: pytest.TempPathFactory) -> Installed:
    """Build the wheel from a copy of the sources (a build leaves build/ and egg-info behind) and
    install it, with its dependencies, into a new virtualenv."""
    base = tmp_path_factory.mktemp("wheel")
    source = base / "source"
    for name in SOURCES:
        if (ROOT / name).is_dir():
            shutil.copytree(ROOT / name, source / name, ignore=shutil.ignore_patterns(*NOT_SHIPPED, "*.egg-info"))
        else:
            source.mkdir(exist_ok=True)
            shutil.copy(ROOT / name, source / name)
    dist = base / "dist"
    checked([sys.executable, "-m", "pip", "wheel", "-q", "--no-deps", "-w", str(dist), str(source)], base, 300)
    (wheel,) = dist.glob("circuit_script-*.whl")
    venv = base / "venv"
    checked([sys.executable, "-m", "venv", str(venv)], base, 120)
    checked([str(venv / "bin" / "python"), "-m", "pip", "install", "-q", "--no-compile", str(wheel)], base, 600)
    workdir = base / "work"
    workdir.mkdir()
    return Installed(wheel, venv, workdir)


def test_the_wheel_carries_the_sdks_the_abi_and_the_examples_without_build_outputs(installed: Installed) -> None:
    names = zipfile.ZipFile(installed.wheel).namelist()
    data = "circuit_host/_data/"
    for shipped in (
        "guest_sdk/zig/entry.zig",
        "guest_sdk/zig/testing.zig",
        "guest_sdk/python/circuit_sdk/_entry.py",
        "abi/circuit.wit",
        "abi/circuit-test.wit",
        "examples/virtual_lpr/circuit.toml",
        "examples/virtual_lpr_py/circuit.py",
    ):
        assert data + shipped in names
    assert "circuit_host/migrations/script.py.mako" in names  # new revisions can be made from an install
    assert "circuit_host/migrations/versions/control_plane/r0001_baseline.py" in names
    for served_file in ("index.html", "js/app.js", "js/pages/overview.js", "vendor/swagger-ui/swagger-ui-bundle.js"):
        assert f"circuit_host/dashboard/static/{served_file}" in names  # /dashboard and /docs, offline
    outputs = [n for n in names if re.search(r"(/|^)(zig-cache|\.zig-cache|zig-out|build|__pycache__)/|\.wasm$", n)]
    assert outputs == []


def test_ziglang_is_a_dependency_and_psycopg_only_an_extra(installed: Installed) -> None:
    with zipfile.ZipFile(installed.wheel) as wheel:
        (metadata,) = [n for n in wheel.namelist() if n.endswith(".dist-info/METADATA")]
        requires = email.message_from_bytes(wheel.read(metadata)).get_all("Requires-Dist", [])
    assert any(r.startswith("ziglang") and "extra ==" not in r for r in requires)
    psycopg = [r for r in requires if r.startswith("psycopg")]
    assert psycopg and all("extra == " in r for r in psycopg)
    assert any('extra == "postgres"' in r for r in psycopg)


def test_the_installed_package_comes_from_the_venv_and_reports_its_versions(installed: Installed) -> None:
    where = installed.run(
        "python", "-c", "import circuit_host, circuit_host.resources as r; print(circuit_host.__file__, r.data_root())"
    )
    assert where.returncode == 0, where.stderr
    module, data_root = where.stdout.split()
    assert Path(module).is_relative_to(installed.venv) and Path(data_root).is_relative_to(installed.venv)
    assert installed.run("python", "-c", "import psycopg").returncode != 0  # the core runs without it

    shown = installed.run("circuit", "--version")
    assert shown.returncode == 0, shown.stderr
    assert re.fullmatch(r"circuit-script 0\.\d+\.\d+\S* \(wasmtime \d+\.\d+\.\d+\S*\)\n", shown.stdout)


def test_circuit_build_compiles_an_example_with_the_packaged_zig_sdk(installed: Installed) -> None:
    example = installed.workdir / "virtual_lpr"
    shutil.copytree(ROOT / "examples" / "virtual_lpr", example, ignore=shutil.ignore_patterns(*NOT_SHIPPED))
    built = installed.run("circuit", "build", "virtual_lpr")
    assert built.returncode == 0, built.stderr
    assert (example / "zig-out" / "virtual_lpr.wasm").is_file()
    assert re.search(r"bundle: \S+\.circuit", built.stdout)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@pytest.fixture
def served(installed: Installed) -> Iterator[tuple[str, str]]:
    """``circuit serve`` from the venv on a fresh data directory, answering: its URL and the admin key
    it printed."""
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    data_dir = installed.workdir / "data"
    process = subprocess.Popen(
        [str(installed.venv / "bin" / "circuit"), "serve", "--port", str(port), "--data-dir", str(data_dir)],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        cwd=installed.workdir,
        env=clean_env(),
    )
    watchdog = threading.Timer(STARTUP_TIMEOUT_S, process.kill)  # a hung start ends the readline below
    watchdog.start()
    try:
        banner = ""
        assert process.stdout is not None
        while "API docs" not in banner:
            line = process.stdout.readline()
            if not line:
                raise AssertionError("circuit serve did not start:\n" + banner)
            banner += line
        key = re.search(r"admin key:\s+(\S+)", banner)
        assert key is not None, banner
        while True:
            try:
                if httpx.get(f"{url}/healthz", trust_env=False).status_code == 200:
                    break
            except httpx.HTTPError:
                if process.poll() is not None:
                    raise
                time.sleep(0.1)
        yield url, key.group(1)
    finally:
        watchdog.cancel()
        process.terminate()
        process.wait(timeout=30)


def test_circuit_serve_bootstraps_the_packaged_demo_and_answers(served: tuple[str, str]) -> None:
    url, key = served
    circuits = httpx.get(
        f"{url}/v1/environments/production/circuits", headers={"authorization": f"Bearer {key}"}, trust_env=False
    )
    assert circuits.status_code == 200
    assert [c["name"] for c in circuits.json()] == ["virtual_lpr"]
    index = httpx.get(f"{url}/dashboard/", trust_env=False)  # the dashboard and /docs, from the package
    assert index.status_code == 200 and 'src="js/app.js"' in index.text
    for asset in ("js/app.js", "js/pages/execution.js", "style.css", "vendor/swagger-ui/swagger-ui-bundle.js"):
        assert httpx.get(f"{url}/dashboard/{asset}", trust_env=False).status_code == 200, asset
    docs = httpx.get(f"{url}/docs", trust_env=False).text
    assert "/dashboard/vendor/swagger-ui/swagger-ui-bundle.js" in docs and "cdn." not in docs
