"""Secrets at rest, as someone holding a copy of the data directory would look for them (issue 11, item 11).

Every secret is set through the HTTP API, then the raw files (the platform database with its -wal
and -shm, the records files) are searched for each secret's bytes; the data directory and its
databases are private to the server's user; a wrong or missing master key stops the start with a
message and changes nothing; the master key rotates without a moment where the data is unreadable.
"""

from __future__ import annotations

import hashlib
import json
import os
import signal
import subprocess
import sys
import textwrap
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
import sqlalchemy as sa

from circuit_host.platform import MasterKey, MasterKeyError, Platform, SecretBox
from circuit_host.platform.tenants import KEY_PREFIX
from circuit_host.server import ServerSettings
from circuit_host.server.master_key import open_platform, pending_key_path
from circuit_host.storage_engine import make_engine
from tests.cli.test_serve import ROOT, Served
from tests.connectors.crm.fakes import FakeGoHighLevel, FakeSalesforce
from tests.server.conftest import LiveServer

HMAC_SECRET = "hmac-secret-via-api-41c7d2"
HEADER_SECRET = "Bearer header-secret-via-api-9a05be"
GHL_TOKEN = "pit-ghl-token-via-api-6f2e18"
SALESFORCE_SECRET = "sf-client-secret-via-api-0d93ac"


def database_files(data_dir: Path) -> list[Path]:
    return sorted(p for p in data_dir.rglob("*") if p.is_file() and ".sqlite3" in p.name)


def occurrences(data_dir: Path, secrets: list[str]) -> dict[str, list[str]]:
    """Which secrets occur, byte for byte, in which database files."""
    found: dict[str, list[str]] = {}
    for path in database_files(data_dir):
        data = path.read_bytes()
        for secret in secrets:
            if secret.encode() in data:
                found.setdefault(str(path.relative_to(data_dir)), []).append(secret)
    return found


@pytest.fixture
def crms() -> Iterator[tuple[FakeGoHighLevel, FakeSalesforce]]:
    ghl, salesforce = FakeGoHighLevel(api_key=GHL_TOKEN), FakeSalesforce()
    salesforce.client_secret = SALESFORCE_SECRET
    yield ghl, salesforce
    ghl.close()
    salesforce.close()


def test_no_secret_set_through_the_api_is_in_the_database_files(
    live: LiveServer, crms: tuple[FakeGoHighLevel, FakeSalesforce], tmp_path: Path
) -> None:
    ghl, salesforce = crms
    tenant = live.tenant("acme")
    data_dir = live.state.settings.data_dir
    with tenant.client(live) as client:
        patched = client.patch("/v1/settings", json={"generic_hmac_secret": HMAC_SECRET})
        assert patched.status_code == 200, patched.text
        credential = {"url": "https://census.example/v1", "headers": {"Authorization": HEADER_SECRET}}
        assert client.put("/v1/credentials/census", json=credential).status_code == 200
        ghl_selection = {
            "crm": "gohighlevel",
            "location_id": ghl.location_id,
            "api_key": GHL_TOKEN,
            "base_url": ghl.url,
        }
        sf_selection = {
            "crm": "salesforce",
            "instance_url": salesforce.url,
            "client_id": salesforce.client_id,
            "client_secret": SALESFORCE_SECRET,
        }
        both = {"system_of_record": {"dev": ghl_selection, "staging": sf_selection}}  # each a test call to its CRM
        chosen = client.patch("/v1/settings", json=both)
        assert chosen.status_code == 200, chosen.text
        tokens = [
            httpx.URL(client.post(f"/v1/environments/{env}/webhooks/rotate").json()["urls"]["generic"]).path.rsplit(
                "/", 1
            )[1]
            for env in ("dev", "production")
        ]
        written = client.post("/v1/records/Contact?env=production", json={"records": [{"LastName": "Secretive"}]})
        assert written.status_code == 200, written.text
        shown = client.get("/v1/settings").text
    secrets = [HMAC_SECRET, HEADER_SECRET, GHL_TOKEN, SALESFORCE_SECRET, *tokens]
    assert not [s for s in secrets if s in shown]
    settings = live.state.platform.tenants.get_settings(tenant.id)  # the server reads them back
    assert settings.named_credentials["census"].secret_headers() == {"Authorization": HEADER_SECRET}
    assert GHL_TOKEN in json.dumps(settings.to_storage()) and SALESFORCE_SECRET in json.dumps(settings.to_storage())

    files = [p.name for p in database_files(data_dir)]
    assert "platform.sqlite3" in files and "platform.sqlite3-wal" in files  # searched while the server runs
    assert occurrences(data_dir, secrets) == {}
    live.state.platform.database.engine.dispose()  # and once every connection closed: the log checkpointed
    for store in live.state._stores.values():
        store.engine.dispose()
    assert occurrences(data_dir, secrets) == {}


def test_the_data_directory_and_its_databases_are_private(live: LiveServer) -> None:
    tenant = live.tenant("acme")
    with tenant.client(live) as client:
        written = client.post("/v1/records/Contact?env=dev", json={"records": [{"LastName": "Private"}]})
        assert written.status_code == 200, written.text
    data_dir = live.state.settings.data_dir
    assert oct(data_dir.stat().st_mode & 0o777) == "0o700"
    files = database_files(data_dir)
    assert any("records" in p.relative_to(data_dir).parts[0] for p in files)  # records.sqlite3 or records/…
    for path in [*files, data_dir / "master.key"]:
        assert oct(path.stat().st_mode & 0o777) == "0o600", path


def run_cli(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    environment = {k: v for k, v in os.environ.items() if k != "CIRCUIT_MASTER_KEY"} | (env or {})
    return subprocess.run(
        [sys.executable, "-m", "circuit_host.cli", *args],
        capture_output=True,
        text=True,
        timeout=120,
        cwd=ROOT,
        env=environment,
    )


def dump(data_dir: Path) -> str:
    """Every row of the platform database, to compare before and after."""
    engine = make_engine(data_dir / "platform.sqlite3")
    with engine.connect() as conn:
        names = sorted(sa.inspect(conn).get_table_names())
        text = repr([(n, conn.exec_driver_sql(f'SELECT * FROM "{n}"').all()) for n in names])
    engine.dispose()
    return hashlib.sha256(text.encode()).hexdigest()


@pytest.fixture
def made(tmp_path: Path) -> Path:
    """A data directory with a tenant, made by ``circuit tenant create`` (its key in master.key)."""
    data_dir = tmp_path / "data"
    created = run_cli("tenant", "create", "Acme", "--data-dir", str(data_dir))
    assert created.returncode == 0, created.stderr
    return data_dir


def test_a_wrong_master_key_stops_the_start_with_a_message_and_changes_nothing(made: Path) -> None:
    before = dump(made)
    wrong = MasterKey.generate().encoded()
    served = run_cli("serve", "--port", "1", "--data-dir", str(made), env={"CIRCUIT_MASTER_KEY": wrong})
    assert served.returncode == 2
    assert "Traceback" not in served.stderr and "Traceback" not in served.stdout
    key_id = MasterKey.parse((made / "master.key").read_text(), "file").id
    assert f"is encrypted under master key {key_id}, but this host has master key" in served.stderr
    assert "(from CIRCUIT_MASTER_KEY)" in served.stderr
    assert dump(made) == before

    malformed = run_cli("tenant", "create", "X", "--data-dir", str(made), env={"CIRCUIT_MASTER_KEY": "not-a-key"})
    assert malformed.returncode == 2 and "Traceback" not in malformed.stderr
    assert "the master key from CIRCUIT_MASTER_KEY is not 32 bytes in url-safe base64" in malformed.stderr

    (made / "master.key").rename(made / "elsewhere.key")
    lost = run_cli("tenant", "create", "X", "--data-dir", str(made))
    assert lost.returncode == 2 and "Traceback" not in lost.stderr
    assert f"{made / 'master.key'} was missing" in lost.stderr and "restore it from your backup" in lost.stderr
    assert not (made / "master.key").exists()  # nothing left in the way of the restored file
    assert dump(made) == before
    (made / "elsewhere.key").rename(made / "master.key")
    assert run_cli("tenant", "create", "Second", "--data-dir", str(made)).returncode == 0


def test_the_admin_key_and_webhook_urls_are_printed_on_the_first_start_only(tmp_path: Path) -> None:
    data_dir = tmp_path / "data"
    first = Served(data_dir)
    try:
        banner = "".join(first.banner)
        saved = json.loads((data_dir / "admin-credentials.json").read_text())
        assert saved["admin_key"] == first.key and first.key in banner
        assert set(saved["production_webhooks"]) >= {"ghl", "generic"}
        assert all(url in banner for url in saved["production_webhooks"].values())
    finally:
        first.stop()
    second = Served(data_dir)
    try:
        banner = "".join(second.banner)
        token = httpx.URL(saved["production_webhooks"]["generic"]).path.rsplit("/", 1)[1]
        assert saved["admin_key"] not in banner and token not in banner
        assert f"in {data_dir / 'admin-credentials.json'}" in banner
        headers = {"authorization": f"Bearer {second.key}"}
        with httpx.Client(base_url=second.url, headers=headers, trust_env=False) as client:
            assert client.get("/v1/environments/production/webhooks").status_code == 409  # shown once already
            unsigned = client.post(httpx.URL(saved["production_webhooks"]["generic"]).path, content=b"{}")
            assert unsigned.status_code == 401  # the saved URL still reaches the tenant (then wants a signature)
    finally:
        second.stop()
    key_secret = saved["admin_key"].removeprefix(KEY_PREFIX).split("_", 1)[1]  # the secret may hold "_" itself
    assert len(key_secret) >= 32 and len(token) >= 32
    assert occurrences(data_dir, [key_secret, token]) == {}


ROTATION = textwrap.dedent(
    """
    import os, signal, sys
    from pathlib import Path
    from circuit_host.server import ServerSettings
    from circuit_host.server.master_key import rotate_master_key

    def stop(step):
        if step == sys.argv[2]:
            os.kill(os.getpid(), signal.SIGKILL)

    rotate_master_key(ServerSettings(data_dir=Path(sys.argv[1])), after_step=stop)
    """
)


@pytest.mark.parametrize("killed_after", ["new key written", "re-encrypted", "key file replaced"])
def test_a_rotation_killed_at_any_step_leaves_the_data_readable(made: Path, killed_after: str) -> None:
    settings = ServerSettings(data_dir=made)
    with open_platform(settings) as platform:
        [tenant] = platform.tenants.list_tenants()
        platform.tenants.update_settings(tenant.id, {"generic_hmac_secret": HMAC_SECRET})
    old = MasterKey.parse((made / "master.key").read_text(), "file")
    killed = subprocess.run([sys.executable, "-c", ROTATION, str(made), killed_after], cwd=ROOT, timeout=120)
    assert killed.returncode == -signal.SIGKILL
    with open_platform(settings) as platform:  # the next start settles what the rotation left
        settings_now = platform.tenants.get_settings(tenant.id)
        in_use = platform.tenants.key_ids_in_use()
    assert settings_now.to_storage()["generic_hmac_secret"] == HMAC_SECRET
    current = MasterKey.parse((made / "master.key").read_text(), "file")
    assert in_use == {current.id}
    assert not pending_key_path(made / "master.key").exists()
    assert (current.id == old.id) == (killed_after == "new key written")  # rotated once the transaction committed


def test_rotating_the_key_file_from_the_command_line(made: Path) -> None:
    old = MasterKey.parse((made / "master.key").read_text(), "file")
    rotated = run_cli("secrets", "rotate-master-key", "--data-dir", str(made))
    assert rotated.returncode == 0, rotated.stderr
    new = MasterKey.parse((made / "master.key").read_text(), "file")
    assert new.id != old.id and f"under master key {new.id}" in rotated.stdout
    assert new.encoded() not in rotated.stdout  # the key stays in its file
    assert oct((made / "master.key").stat().st_mode & 0o777) == "0o600"
    with open_platform(ServerSettings(data_dir=made)) as platform:
        assert [t.name for t in platform.tenants.list_tenants()] == ["Acme"]
    with pytest.raises(MasterKeyError):
        Platform(made / "platform.sqlite3", secret_box=SecretBox(old))


def test_rotating_a_key_from_the_environment(tmp_path: Path) -> None:
    data_dir = tmp_path / "data"
    first = MasterKey.generate().encoded()
    assert (
        run_cli("tenant", "create", "Acme", "--data-dir", str(data_dir), env={"CIRCUIT_MASTER_KEY": first}).returncode
        == 0
    )
    assert not (data_dir / "master.key").exists()
    printed = run_cli("secrets", "rotate-master-key", "--data-dir", str(data_dir), env={"CIRCUIT_MASTER_KEY": first})
    assert printed.returncode == 0, printed.stderr
    second = printed.stdout.split("new master key (shown once): ", 1)[1].split()[0]
    assert "set CIRCUIT_MASTER_KEY to the new key" in printed.stdout
    chosen = MasterKey.generate().encoded()
    given = run_cli(
        "secrets",
        "rotate-master-key",
        "--data-dir",
        str(data_dir),
        "--new-key-env",
        "NEXT_KEY",
        env={"CIRCUIT_MASTER_KEY": second, "NEXT_KEY": chosen},
    )
    assert given.returncode == 0, given.stderr
    assert chosen not in given.stdout
    for key, works in ((first, False), (second, False), (chosen, True)):
        answer = run_cli("tenant", "create", "More", "--data-dir", str(data_dir), env={"CIRCUIT_MASTER_KEY": key})
        assert (answer.returncode == 0) is works, answer.stderr
    missing = run_cli("secrets", "rotate-master-key", "--data-dir", str(data_dir), "--new-key-env", "UNSET_VAR_X")
    assert missing.returncode == 2 and "UNSET_VAR_X: that environment variable is not set" in missing.stderr
