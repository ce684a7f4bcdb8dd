"""`circuit settings` and `circuit credentials`, run as an operator runs them: the real command in a
subprocess against a real server on loopback (uvicorn in this process, ``live``)."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat

from circuit_host.cli.settings_commands import setting_value
from tests.cli.test_serve import circuit
from tests.server.conftest import LiveServer, live  # noqa: F401 (the fixture)

SECRET = "cli-hmac-secret-0123456789abcdef"


@pytest.fixture
def admin(live: LiveServer) -> tuple[str, str]:  # noqa: F811
    """(server URL, admin key) of a new tenant."""
    return live.url, live.tenant("acme").admin_key


@pytest.fixture
def secret_fingerprint(live: LiveServer) -> Callable[[str], str]:  # noqa: F811
    """How the server shows a secret (keyed by its master key)."""
    return live.state.platform.tenants.fingerprint


def run(admin: tuple[str, str], *args: str) -> tuple[int, str, str]:
    done = circuit(*args, key=admin[1], server=admin[0])
    return done.returncode, done.stdout, done.stderr


@pytest.mark.parametrize(
    ("text", "value"),
    [
        ("600", 600),
        ("true", True),
        ("null", None),
        ('["loc-1", "loc-2"]', ["loc-1", "loc-2"]),
        ('{"queries": 5}', {"queries": 5}),
        ("loc-1", "loc-1"),
        ("@@handle", "@handle"),
    ],
)
def test_a_value_is_json_when_it_parses_and_text_otherwise(text: str, value: object) -> None:
    assert setting_value(text) == value


def test_settings_set_show_and_unset(
    admin: tuple[str, str], tmp_path: Path, secret_fingerprint: Callable[[str], str]
) -> None:
    code, out, err = run(admin, "settings", "set", "rate_limit_per_minute", "600")
    assert (code, out.strip()) == (0, "rate_limit_per_minute = 600"), err
    assert run(admin, "settings", "set", "ghl_location_ids", '["loc-9"]')[0] == 0
    secret_file = tmp_path / "hmac.txt"
    secret_file.write_text(SECRET + "\n")
    code, out, err = run(admin, "settings", "set", "generic_hmac_secret", f"@{secret_file}")
    assert code == 0, err
    assert SECRET not in out and secret_fingerprint(SECRET) in out

    code, out, err = run(admin, "settings", "show")
    assert code == 0, err
    assert "rate_limit_per_minute = 600" in out
    assert 'ghl_location_ids = ["loc-9"]' in out
    assert f"generic_hmac_secret = set (fingerprint {secret_fingerprint(SECRET)})" in out
    assert SECRET not in out
    shown = json.loads(run(admin, "settings", "show", "--json")[1])
    assert shown["generic_hmac_secret"] == {"set": True, "fingerprint": secret_fingerprint(SECRET)}

    code, out, err = run(admin, "settings", "unset", "rate_limit_per_minute")
    assert code == 0 and "rate_limit_per_minute = 1000" in out, err
    code, out, err = run(admin, "settings", "unset", "generic_hmac_secret")
    assert code == 0 and "generic_hmac_secret = not set" in out, err


def test_a_pem_key_is_set_from_a_file(admin: tuple[str, str], tmp_path: Path) -> None:
    pem = Ed25519PrivateKey.generate().public_key().public_bytes(Encoding.PEM, PublicFormat.SubjectPublicKeyInfo)
    (tmp_path / "ghl.pem").write_bytes(pem)
    code, out, err = run(admin, "settings", "set", "ghl_public_key", f"@{tmp_path / 'ghl.pem'}")
    assert code == 0, err
    assert "BEGIN PUBLIC KEY" in out  # a public key is shown


def test_bad_input_prints_the_servers_detail_and_exits_2(admin: tuple[str, str], tmp_path: Path) -> None:
    (tmp_path / "bad.pem").write_text("-----BEGIN PUBLIC KEY-----\nbm90IGEga2V5\n-----END PUBLIC KEY-----\n")
    for args, detail in [
        (("settings", "set", "ghl_public_key", f"@{tmp_path / 'bad.pem'}"), "settings.ghl_public_key: "),
        (("settings", "set", "colour", "red"), "settings.colour: unknown setting"),
        (("settings", "set", "rate_limit_per_minute", "fast"), "settings.rate_limit_per_minute: "),
        (("settings", "set", "rate_limit_per_minute", f"@{tmp_path / 'missing'}"), "cannot read"),
        (("credentials", "set", "census", "--url", "ftp://x"), "settings.named_credentials.census.url"),
        (("credentials", "set", "census", "--url", "https://x.example.com", "--header", "nocolon"), "Name: value"),
        (("credentials", "delete", "census"), "HTTP 404"),
        (("credentials", "delete", "../keys/x"), "HTTP 404"),  # one path segment: never another route
    ]:
        code, out, err = run(admin, *args)
        assert code == 2, (args, out, err)
        assert detail in err, (args, err)
    code, out, _ = run(admin, "settings", "show")  # the admin key was not revoked through ../keys
    assert code == 0 and "rate_limit_per_minute = 1000" in out and "ghl_public_key = " in out
    assert run(admin, "credentials", "list")[1].strip() == "no named credentials"


def test_credentials_set_list_and_delete(
    admin: tuple[str, str], tmp_path: Path, secret_fingerprint: Callable[[str], str]
) -> None:
    token = tmp_path / "token"
    token.write_text("Bearer file-token-0123456789\n")
    code, out, err = run(
        admin,
        "credentials",
        "set",
        "census",
        "--url",
        "https://census.example.com/v1",
        "--header",
        f"Authorization: @{token}",
        "--header",
        "X-Team: growth",
    )
    assert code == 0, err
    assert "census  https://census.example.com/v1" in out
    assert f"Authorization: set (fingerprint {secret_fingerprint('Bearer file-token-0123456789')})" in out
    code, out, err = run(admin, "credentials", "list")
    assert code == 0, err
    assert "census  https://census.example.com/v1" in out and "X-Team: set (fingerprint" in out
    assert "file-token" not in out and "growth" not in out
    listed = json.loads(run(admin, "credentials", "list", "--json")[1])
    assert [c["name"] for c in listed] == ["census"]
    assert "named_credentials = census" in run(admin, "settings", "show")[1]
    code, out, err = run(admin, "credentials", "delete", "census")
    assert (code, out.strip()) == (0, "deleted census"), err
    assert run(admin, "credentials", "list")[1].strip() == "no named credentials"
