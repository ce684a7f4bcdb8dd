"""`circuit serve` configured by `CIRCUIT_*` environment variables, as a container would run it:
flags override them, a bad value stops the start naming its variable, and the public URL is what
printed and API-shown webhook URLs are built on."""

from __future__ import annotations

import os
import re
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest
from pydantic import BaseModel

from circuit_host.errors import Rejected
from circuit_host.server import ServerSettings
from circuit_host.server.settings import ENV_NESTED_DELIMITER, ENV_PREFIX
from tests.cli.test_serve import ROOT, free_port

PUBLIC = "https://circuit.example.test/edge"


def clean_environment(**variables: str) -> dict[str, str]:
    """This process's environment without any CIRCUIT_* variable, plus ``variables``."""
    return {**{k: v for k, v in os.environ.items() if not k.startswith("CIRCUIT_")}, **variables}


def test_a_server_started_with_only_environment_variables_listens_and_links_where_they_say(tmp_path: Path) -> None:
    port = free_port()
    env = clean_environment(
        CIRCUIT_HOST="127.0.0.1",
        CIRCUIT_PORT=str(port),
        CIRCUIT_DATA_DIR=str(tmp_path / "data"),
        CIRCUIT_PUBLIC_URL=PUBLIC + "/",
        CIRCUIT_MAX_REQUEST_BYTES="4096",
        CIRCUIT_OBSERVABILITY__LOG_LEVEL="warning",
    )
    process = subprocess.Popen(
        [sys.executable, "-m", "circuit_host.cli", "serve"],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        cwd=tmp_path,  # a relative default data directory would land here: none may
        env=env,
    )
    try:
        banner: list[str] = []
        deadline = time.monotonic() + 180
        assert process.stdout is not None
        while not any("API docs" in line for line in banner):
            line = process.stdout.readline()
            if not line or time.monotonic() > deadline:
                raise AssertionError("circuit serve did not start:\n" + "".join(banner) + (line or ""))
            banner.append(line)
        text = "".join(banner)
        assert f"listening on http://127.0.0.1:{port}" in text
        assert f"public URL:  {PUBLIC}\n" in text
        hooks = re.findall(r"(\S+/v1/hooks/\S+)", text)
        assert hooks and all(url.startswith(f"{PUBLIC}/v1/hooks/") for url in hooks), text
        assert f"API docs:    {PUBLIC}/docs" in text
        assert (tmp_path / "data" / "platform.sqlite3").exists() and not (tmp_path / ".circuit").exists()

        key = re.search(r"admin key:\s+(\S+)", text).group(1)  # type: ignore[union-attr]
        base = f"http://127.0.0.1:{port}"
        with httpx.Client(base_url=base, headers={"authorization": f"Bearer {key}"}, trust_env=False) as client:
            while True:
                try:
                    if client.get("/healthz").status_code == 200:
                        break
                except httpx.HTTPError:
                    if time.monotonic() > deadline:
                        raise
                    time.sleep(0.1)
            rotated = client.post("/v1/environments/dev/webhooks/rotate")
            assert rotated.status_code == 200, rotated.text
            assert all(u.startswith(f"{PUBLIC}/v1/hooks/") for u in rotated.json()["urls"].values())
            too_big = client.post("/v1/records/Contact", content=b"{" + b" " * 8000 + b"}")
            assert too_big.status_code == 413  # CIRCUIT_MAX_REQUEST_BYTES
    finally:
        process.terminate()
        process.wait(timeout=30)


@pytest.mark.parametrize(
    ("variables", "named"),
    [
        ({"CIRCUIT_PORT": "eighty"}, "CIRCUIT_PORT: Input should be a valid integer"),
        ({"CIRCUIT_PORT": "70000"}, "CIRCUIT_PORT: Input should be less than or equal to 65535"),
        ({"CIRCUIT_PUBLIC_URL": "hooks.example.test"}, "CIRCUIT_PUBLIC_URL: "),
        ({"CIRCUIT_OUTBOX_RETRY__MAX_ATTEMPTS": "0"}, "CIRCUIT_OUTBOX_RETRY__MAX_ATTEMPTS: "),
        ({"CIRCUIT_OBSERVABILITY__LOG_LEVEL": "loud"}, "CIRCUIT_OBSERVABILITY__LOG_LEVEL: "),
        ({"CIRCUIT_OBSERVABILITY__METRICS_ALLOWED_NETWORKS": "10.0.0.0/8"}, "not valid JSON"),
    ],
)
def test_an_invalid_variable_stops_the_start_naming_it(tmp_path: Path, variables: dict[str, str], named: str) -> None:
    done = subprocess.run(
        [sys.executable, "-m", "circuit_host.cli", "serve", "--data-dir", str(tmp_path / "data")],
        capture_output=True,
        text=True,
        timeout=120,
        cwd=ROOT,
        env=clean_environment(**variables),
    )
    assert done.returncode == 2, done.stdout + done.stderr
    assert named in done.stderr, done.stderr
    assert not (tmp_path / "data").exists()  # refused before anything was made


def test_flags_override_the_environment_which_overrides_the_defaults() -> None:
    environ = {
        "CIRCUIT_PORT": "9100",
        "CIRCUIT_DB_URL": "postgresql://db.internal/circuit",
        "CIRCUIT_MAX_CONCURRENT_EXECUTIONS": "12",
        "CIRCUIT_OUTBOX_RETRY": '{"max_attempts": 4, "lease_s": 60}',
        "CIRCUIT_API_KEY": "not a server setting",  # the remote commands' variable: ignored here
    }
    flags = {"port": 9200, "db_url": None, "outbox_retry": {"max_attempts": 5, "lease_s": None}}
    settings = ServerSettings.from_environment(environ, flags, data_dir=Path(".circuit"))
    assert settings.port == 9200 and settings.db_url == "postgresql://db.internal/circuit"
    assert settings.max_concurrent_executions == 12
    assert (settings.outbox_retry.max_attempts, settings.outbox_retry.lease_s) == (5, 60)
    assert settings.public_url == "http://127.0.0.1:9200" and settings.data_dir == Path(".circuit")
    assert ServerSettings.from_environment({"CIRCUIT_DATA_DIR": "/srv/circuit"}, data_dir=Path(".c")).data_dir == Path(
        "/srv/circuit"
    )
    with pytest.raises(Rejected, match=r"^port: "):  # a bad flag is named as the setting
        ServerSettings.from_environment({}, {"port": -1}, data_dir=Path(".circuit"))


def test_settings_built_in_code_never_read_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CIRCUIT_PORT", "9999")
    monkeypatch.setenv("CIRCUIT_DB_URL", "postgresql://elsewhere/db")
    settings = ServerSettings(data_dir=Path("unused"))
    assert (settings.port, settings.db_url) == (8080, None)


def test_the_server_readme_lists_the_variable_of_every_setting() -> None:
    """The table in server/README.md ("Configuring the server") is held to the model."""
    readme = (ROOT / "host" / "circuit_host" / "server" / "README.md").read_text()

    def variables(model: type[BaseModel], *path: str) -> list[str]:
        found = []
        for name, field in model.model_fields.items():
            inner = field.annotation
            if isinstance(inner, type) and issubclass(inner, BaseModel):
                found.extend(variables(inner, *path, name))
            else:
                found.append(ENV_PREFIX + ENV_NESTED_DELIMITER.join(p.upper() for p in (*path, name)))
        return found

    missing = [v for v in variables(ServerSettings) if f"| `{v}` |" not in readme]
    assert missing == [], f"add these to server/README.md's table: {missing}"
